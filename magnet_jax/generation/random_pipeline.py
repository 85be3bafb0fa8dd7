"""A MagnetPipeline with random weights, for tests, latency measurements and smoke runs on one CPU.

`TINY_LM` is configs/tiny.py's LM (T = 30 frames) at the packaged MiniLM's width; `TINY_CODEC` a 1.6 kHz EnCodec
with the LM's 50 Hz frame rate and codebook size.
"""
import jax

from magnet_jax import codec
from magnet_jax.codec import CodecConfig
from magnet_jax.generation import pretrained
from magnet_jax.generation.pipeline import MagnetPipeline
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.params import init_params
from magnet_jax.text import TextEncoder

TINY_LM = MagnetConfig(dim=64, num_heads=4, num_layers=2, card=32, text_dim=384, segment_duration=0.6)
TINY_CODEC = CodecConfig(sample_rate=1600, ratios=(8, 4), n_filters=4, dimension=8, n_q=4, bins=32, lstm=1)


def build(lm_config: MagnetConfig = TINY_LM, codec_config: CodecConfig = TINY_CODEC, seed: int = 0,
          **pipeline_fields) -> MagnetPipeline:
  """A pipeline of random LM and codec weights with the packaged MiniLM text encoder (Dt 384)."""
  lm_params = init_params(lm_config, jax.random.key(seed))
  codec_params = codec.init(jax.random.key(seed + 1), codec_config)
  return MagnetPipeline(lm_config, lm_params, codec_config, codec_params, TextEncoder.minilm(), **pipeline_fields)


def export(folder, **build_kwargs) -> MagnetPipeline:
  """Builds a random pipeline and saves it as an exported folder (`pretrained.load` reads it without torch)."""
  pipeline = build(**build_kwargs)
  pretrained.save_pipeline(folder, pipeline, 'minilm', source='random weights (magnet_jax.generation.random_pipeline)')
  return pipeline
