"""The report layer: plotly figures, storage readers, export and optuna-dashboard."""
