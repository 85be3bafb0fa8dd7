"""hybrid-magnet-medium: magnet-medium (30 s) with the delay codebook pattern for Hybrid-MAGNeT decoding.

For loading the released checkpoint and decoding; train.py refuses it (no semi-autoregressive objective here).
"""
from magnet_jax.configs import medium_30s


def get_config():
  config = medium_30s.get_config()
  config.model.codebooks_pattern = 'delay'
  return config
