"""The backend-specific training ops, one module per backend (imported only on that backend), and shapes.py,
the argument handling they share."""
