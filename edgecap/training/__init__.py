"""Training: the trainer, resumable checkpoints and the Keras step used for decoding."""
