"""Flax modules: the MAGNeT LM, its transformer and restricted-context attention."""
from magnet_jax.models.lm import MagnetLM

__all__ = ['MagnetLM']
