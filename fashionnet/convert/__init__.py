"""Conversion of a trained model.keras into each format, one module per format (tensorflow process)."""
