"""The analysis layer: landscape sweeps, optimum statistics and diagnostics (compute only)."""
