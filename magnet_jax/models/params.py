"""Parameter creation for MagnetLM: random init (audiocraft's scheme), logical axes, counting."""
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.lm import MagnetLM

_DEPTH_SCALED = ('query', 'key', 'value', 'out', 'wi', 'wo')


def _dummy_inputs(config: MagnetConfig):
  codes = jnp.zeros((1, config.n_q, config.span_len), jnp.int32)
  return codes, jnp.zeros((1, 1, config.text_dim), jnp.float32), jnp.ones((1, 1), bool)


def boxed_init(config: MagnetConfig, rng: jax.Array):
  """MagnetLM params still boxed with their logical axis names (`nn.Partitioned`), before depth scaling."""
  return MagnetLM(config).init(rng, *_dummy_inputs(config), level=0)['params']


def _depthwise_scale(path, x: jax.Array, config: MagnetConfig) -> jax.Array:
  """audiocraft's depthwise_init='current': layer l's linear weights have std / sqrt(2 (l + 1))."""
  names = [getattr(p, 'key', '') for p in path]
  if names[-1] not in _DEPTH_SCALED or 'transformer' not in names:
    return x
  if config.scan_layers:
    depth = jnp.arange(1, config.num_layers + 1, dtype=x.dtype)
    return x / jnp.sqrt(2 * depth).reshape((-1,) + (1,) * (x.ndim - 1))
  layer = int(next(n for n in names if n.startswith('layers_')).split('_')[1])
  return x / math.sqrt(2 * (layer + 1))


@functools.partial(jax.jit, static_argnums=0)
def init_params(config: MagnetConfig, rng: jax.Array) -> dict:
  """Random MagnetLM params (plain arrays): truncated normal std 1/sqrt(fan_in), depth-scaled layers.

  One compiled program (op by op, each of the init's operations would compile on its own); wrap in
  `jax.jit(..., out_shardings=...)` to create sharded params without a host copy.
  """
  params = nn.meta.unbox(boxed_init(config, rng))
  return jax.tree_util.tree_map_with_path(lambda p, x: _depthwise_scale(p, x, config), params)


def logical_axes(config: MagnetConfig) -> dict:
  """The params' logical axis names as a tree of `jax.sharding.PartitionSpec` (no compute, no memory)."""
  boxed = jax.eval_shape(functools.partial(boxed_init, config), jax.random.key(0))
  return nn.get_partition_spec(boxed)


def count_params(params) -> int:
  return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(params)))
