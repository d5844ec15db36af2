"""Models and their activations: checkpoints, training, extraction, the store."""
