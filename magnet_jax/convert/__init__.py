"""Converters from PyTorch checkpoints (audiocraft, transformers) to magnet-jax parameters."""
