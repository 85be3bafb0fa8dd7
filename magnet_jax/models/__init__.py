"""Flax modules: the MAGNeT LM, its transformer and restricted-context attention, and its hyperparameters.

  config.py       MagnetConfig: the LM's hyperparameters, a frozen dataclass built from an ml_collections config
  lm.py           MagnetLM: per-level embeddings summed, the transformer, one output head per level
  transformer.py  audiocraft's StreamingTransformer as MAGNeT uses it (pre-norm self- and cross-attention layers)
  attention.py    multi-head attention and MAGNeT's restricted-context (per-level) self-attention
  layers.py       initialisers, LayerNorm, projections, positions (every parameter with logical axis names)
  params.py       random init (audiocraft's scheme), logical axes, parameter counts
  flops.py        analytic FLOPs of a training step and of a decode (MFU, rooflines)
"""
from magnet_jax.models.lm import MagnetLM

__all__ = ['MagnetLM']
