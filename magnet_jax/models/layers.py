"""Building blocks shared by the LM's modules: initialisers, LayerNorm, projections, positions.

Every parameter carries logical axis names (see `magnet_jax.parallel.sharding`) so that model parallelism is a change
of rules in the config, not of code.
"""
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from magnet_jax.models.config import MagnetConfig


def trunc_normal(fan_in: int):
  """audiocraft's LM init: truncated normal, std 1/sqrt(fan_in), cut at 3 std."""
  std = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return std * jax.random.truncated_normal(key, -3.0, 3.0, shape, dtype)

  return init


def param(module: nn.Module, name: str, shape: Sequence[int], axes: Sequence[str], fan_in: int,
          config: MagnetConfig) -> jax.Array:
  """Declares a parameter with audiocraft's init and logical axis names, cast to the compute dtype."""
  init = nn.with_logical_partitioning(trunc_normal(fan_in), tuple(axes))
  return module.param(name, init, tuple(shape), config.params_dtype).astype(config.compute_dtype)


def layer_norm(config: MagnetConfig, name: str) -> nn.LayerNorm:
  """PyTorch-equivalent LayerNorm (eps 1e-5, affine), statistics in float32."""
  return nn.LayerNorm(
      epsilon=config.norm_eps, dtype=config.compute_dtype, param_dtype=config.params_dtype, name=name,
      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ('norm',)),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ('norm',)))


class Mlp(nn.Module):
  """Non-gated GELU feed-forward without biases: [B, T, D] -> [B, T, D]."""
  config: MagnetConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    wi = param(self, 'wi', (cfg.dim, cfg.mlp_dim), ('embed', 'mlp'), cfg.dim, cfg)
    wo = param(self, 'wo', (cfg.mlp_dim, cfg.dim), ('mlp', 'embed'), cfg.mlp_dim, cfg)
    h = gelu(x @ wi)
    h = nn.with_logical_constraint(h, ('act_batch', 'act_length', 'act_mlp'))
    return h @ wo


def gelu(x: jax.Array) -> jax.Array:
  """Exact GELU as PyTorch computes it, x / 2 * (1 + erf(x / sqrt(2))); written with erf because XLA's CPU erf is
  much cheaper than the erfc form `jax.nn.gelu` uses."""
  return x * 0.5 * (1.0 + jax.lax.erf(x * (1 / math.sqrt(2))))


def sin_embedding(length: int, dim: int, max_period: float, offset: jax.Array | int = 0) -> jax.Array:
  """audiocraft's `create_sin_embedding`: [T, D] = concat(cos, sin), exponent over (D/2 - 1). Float32.

  Positions are offset .. offset + T - 1 (offset: a decoding cache's write index, may be traced).
  """
  half = dim // 2
  positions = (offset + jnp.arange(length))[:, None].astype(jnp.float32)
  adim = jnp.arange(half, dtype=jnp.float32)[None, :]
  phase = positions / (max_period ** (adim / (half - 1)))
  return jnp.concatenate([jnp.cos(phase), jnp.sin(phase)], axis=-1)
