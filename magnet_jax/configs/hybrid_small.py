"""hybrid-magnet-small: magnet-small trained with the delay codebook pattern for Hybrid-MAGNeT decoding
(autoregressive prefix, then masked decoding; magnet_jax/hybrid.py), 30 s music.

For loading the released checkpoint and decoding; Hybrid-MAGNeT's semi-autoregressive training objective is not
implemented here (train.py refuses this config).
"""
from magnet_jax.configs import small_30s


def get_config():
  config = small_30s.get_config()
  config.model.codebooks_pattern = 'delay'
  return config
