"""What the export publishes beside the models: manifest, self-test, model card, the kits."""
