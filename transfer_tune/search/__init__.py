"""The search layer: search space, study specs, storage, proxy search and transfer (Optuna)."""
