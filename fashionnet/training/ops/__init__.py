"""The backend-specific training ops, one module per backend (imported only on that backend)."""
