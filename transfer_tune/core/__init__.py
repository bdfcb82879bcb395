"""The model layer: FNO, the SP/µP table, the training loop and FLOP counts (no Optuna)."""
