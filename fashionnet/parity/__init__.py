"""The parity gate: every exported artifact against Keras, the runtimes that run them, the reference."""
