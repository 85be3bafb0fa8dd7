"""EnCodec: SEANet encoder -> residual vector quantizer -> SEANet decoder, and its pure entry points.

Shapes: audio [B, C, N] (batch, channels, samples, as in audiocraft), codes [B, K, T] int32 (K codebooks,
T = ceil(N / hop_length) frames), latents [B, T, D] (channels-last, D = config.dimension). Parameters are the
`params` collection of `EncodecModel` (weight norm folded into plain kernels), see `init` or
`magnet_jax.codec.convert`.
"""
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

from magnet_jax.codec.config import CodecConfig
from magnet_jax.codec.quantizer import ResidualVectorQuantizer
from magnet_jax.codec.seanet import SEANetDecoder, SEANetEncoder

Params = Any  # nested dict of arrays: {'encoder': ..., 'quantizer': {'codebooks': [K, V, D]}, 'decoder': ...}


class CodecOutput(NamedTuple):
  """Training forward of `EncodecModel`."""
  audio: jax.Array  # [B, C, N] reconstruction (straight-through the quantizer), trimmed to the input length
  latent: jax.Array  # [B, T, D] encoder output
  quantized: jax.Array  # [B, T, D] sum of the selected codebook entries (no straight-through)
  codes: jax.Array  # [B, K, T] int32


class EncodecModel(nn.Module):
  """EnCodec codec. `encode` / `decode` are inference; `__call__` is the differentiable training forward."""
  config: CodecConfig

  def setup(self):
    cfg = self.config
    self.encoder = SEANetEncoder(cfg)
    self.quantizer = ResidualVectorQuantizer(cfg.n_q, cfg.bins, cfg.dimension)
    self.decoder = SEANetDecoder(cfg)

  def __call__(self, audio: jax.Array) -> CodecOutput:
    """audio [B, C, N] -> `CodecOutput`; gradients reach the encoder through a straight-through estimator."""
    latent = self.encoder(audio.transpose(0, 2, 1))
    codes, quantized = self.quantizer(latent)
    decoded = self.decoder(latent + jax.lax.stop_gradient(quantized - latent))
    return CodecOutput(decoded[:, :audio.shape[-1]].transpose(0, 2, 1), latent, quantized, codes)

  def encode(self, audio: jax.Array) -> jax.Array:
    """audio [B, C, N] -> codes [B, K, T] int32."""
    return self.quantizer(self.encoder(audio.transpose(0, 2, 1)))[0]

  def decode(self, codes: jax.Array) -> jax.Array:
    """codes [B, K, T] -> audio [B, C, T * hop_length] (padding not trimmed, as in audiocraft)."""
    return self.decoder(self.quantizer.decode(codes)).transpose(0, 2, 1)


@functools.partial(jax.jit, static_argnames='config')
def init(rng: jax.Array, config: CodecConfig) -> Params:
  """Random parameters for `config` (PyTorch's default initialisation; codebooks kaiming-uniform).

  Args:
    rng: a PRNG key.
    config: the architecture.

  Returns:
    The `params` collection of `EncodecModel(config)`.
  """
  audio = jnp.zeros((1, config.channels, config.hop_length), jnp.float32)
  return EncodecModel(config).init(rng, audio)['params']


@functools.partial(jax.jit, static_argnames='config')
def encode(params: Params, audio: jax.Array, config: CodecConfig) -> jax.Array:
  """Tokenizes audio.

  Args:
    params: from `init` or `magnet_jax.codec.convert`.
    audio: [B, C, N] float waveform at config.sample_rate (C = config.channels).
    config: the architecture (static).

  Returns:
    codes [B, K, T] int32 in [0, config.bins), K = config.n_q, T = ceil(N / config.hop_length).
  """
  return EncodecModel(config).apply({'params': params}, audio.astype(jnp.float32), method=EncodecModel.encode)


@functools.partial(jax.jit, static_argnames='config')
def decode(params: Params, codes: jax.Array, config: CodecConfig) -> jax.Array:
  """Reconstructs audio from codes; pure device computation, so it can run inside another jitted program.

  Args:
    params: from `init` or `magnet_jax.codec.convert`.
    codes: [B, K, T] integers in [0, config.bins) (out-of-range indices are clamped), K <= config.n_q.
    config: the architecture (static).

  Returns:
    audio [B, C, T * config.hop_length] float32 (trim to the original length yourself).
  """
  return EncodecModel(config).apply({'params': params}, codes, method=EncodecModel.decode)
