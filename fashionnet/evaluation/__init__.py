"""Evaluation: metrics, plots, the run's report, predictions."""
