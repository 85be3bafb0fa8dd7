"""Multi-head attention and MAGNeT's restricted-context (per-level) self-attention.

Levels k > 0 attend to |i - j| <= subcodes_context only (11 of T frames): `LevelAttention` describes a level's
self-attention without a [T, T] mask, and `local_attention` computes the restricted context blockwise in
O(T * block) instead of the reference's full T x T scores.

On an NVIDIA GPU with bfloat16/float16 compute, level 0's full attention and the text cross-attention run
`jax.nn.dot_product_attention`'s fused cuDNN kernel (`attention_implementation`); everything else, and every
case cuDNN rejects, runs the XLA path (`dot_product_attention`), which has the same semantics.
"""
import math
from typing import Literal

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from absl import logging

from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.layers import param


def self_attention_mask(config: MagnetConfig, length: int, level: jax.Array | int) -> jax.Array | None:
  """Boolean self-attention mask for the level being predicted (True = attend).

  Level 0 attends to the whole sequence; levels k > 0 only to |i - j| <= subcodes_context (audiocraft's
  `restricted_context_attn_mask`), because upper RVQ levels depend on nearby frames only. A causal config (the
  autoregressive rescorer) gets a lower-triangular mask whatever the level.

  Args:
    config: the LM config.
    length: T.
    level: level being predicted: a Python int, a traced scalar, or a per-example [B] array.

  Returns:
    None (attend everywhere) or a mask broadcastable to [B, N, T, T]: [1, 1, T, T] for a scalar level,
    [B, 1, T, T] for a per-example level.
  """
  i = jnp.arange(length)[:, None]
  j = jnp.arange(length)[None, :]
  if config.causal:
    return (j <= i)[None, None]
  if config.subcodes_context < 0:
    return None
  if isinstance(level, int):
    return None if level == 0 else (jnp.abs(i - j) <= config.subcodes_context)[None, None]
  local = jnp.abs(i - j) <= config.subcodes_context
  level = jnp.asarray(level)
  full = (level == 0).reshape(level.shape + (1, 1, 1))
  mask = jnp.logical_or(local[None, None], full)
  return mask if level.ndim else mask.reshape(1, 1, length, length)


@flax.struct.dataclass
class LevelAttention:
  """The self-attention of the level being predicted, described instead of materialised as a [T, T] mask: level 0
  attends everywhere, levels > 0 to |i - j| <= context. `MultiHeadAttention` runs only the branch the (possibly
  traced) level needs (`lax.cond`), the restricted one with `local_attention`."""
  level: jax.Array                                      # int32 scalar: the level.
  context: int = flax.struct.field(pytree_node=False)  # subcodes_context (>= 0).


@flax.struct.dataclass
class KeyPrefix:
  """Attend to keys 0 .. length - 1 only, the same for every query and example: the text cross-attention's mask
  (`cross_attention_mask`), described rather than materialised so that cuDNN's fused kernel takes it as key
  lengths."""
  length: jax.Array  # int32 scalar >= 1: keys attended.

  def mask(self, keys: int) -> jax.Array:
    """The same as a bool mask [1, 1, 1, S]."""
    return (jnp.arange(keys) < self.length)[None, None, None, :]


SelfMask = jax.Array | LevelAttention | None  # what self-attention layers take (see MultiHeadAttention).
Mask = jax.Array | LevelAttention | KeyPrefix | None  # what `MultiHeadAttention` takes.


def level_self_attention(config: MagnetConfig, length: int, level: jax.Array | int) -> SelfMask:
  """What the self-attention layers take for level `level`: a `LevelAttention` for a scalar level of a non-causal
  LM with restricted context (no [T, T] mask), else `self_attention_mask` (causal LMs, unrestricted context,
  per-example [B] stages)."""
  if config.causal or config.subcodes_context < 0 or jnp.ndim(level) != 0:
    return self_attention_mask(config, length, level)
  return LevelAttention(jnp.asarray(level, jnp.int32), config.subcodes_context)


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """softmax(q k^T / sqrt(H)) v over the keys where `mask` (broadcastable to [B, N, T, S]) is True:
  q [B, T, N, H], k, v [B, S, N, H] -> [B, T, N, H].

  `jax.nn.dot_product_attention`'s semantics (scores and softmax in float32, a fully masked row attends uniformly),
  computed head-major so that the [B, N, T, S] scores feed both matmuls without a transposing copy (1.4-1.9x
  faster on CPU). Unmasked attention on CPU goes one head at a time, so that its [B, T, S] scores stay in cache:
  another 2-4x there (level 0's full attention; the batch axis stays whole, so data-parallel sharding is kept).
  Accelerators take all heads at once.
  """
  q = q * (1 / math.sqrt(q.shape[-1]))

  def attend(q, k, v, mask):  # [..., T, H], [..., S, H] -> [..., T, H]
    scores = jnp.einsum('...th,...sh->...ts', q, k, preferred_element_type=jnp.float32)
    if mask is not None:
      scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    return jnp.einsum('...ts,...sh->...th', jax.nn.softmax(scores, axis=-1).astype(v.dtype), v)

  if mask is None and jax.default_backend() == 'cpu':
    q, k, v = (x.transpose(2, 0, 1, 3) for x in (q, k, v))  # [N, B, T, H]
    return jax.lax.map(lambda qkv: attend(*qkv, None), (q, k, v)).transpose(1, 2, 0, 3)
  q, k, v = (x.transpose(0, 2, 1, 3) for x in (q, k, v))  # [B, N, T, H]
  return attend(q, k, v, mask).transpose(0, 2, 1, 3)


def local_attention(q: jax.Array, k: jax.Array, v: jax.Array, context: int) -> jax.Array:
  """Softmax attention of each position to the positions |i - j| <= context: q, k, v [B, T, N, H] -> [B, T, N, H].

  Equal to `dot_product_attention` with the banded mask, in O(T * block) instead of O(T^2): T is cut into
  blocks of `block` >= context frames, and each block attends to itself and its two neighbours (3 block keys per
  query, the band masked exactly inside them).
  """
  batch, length, heads, head_dim = q.shape
  block = max(context, 8)
  blocks = -(-length // block)
  padded = blocks * block
  pad = lambda x, left, right: jnp.pad(x, ((0, 0), (left, right), (0, 0), (0, 0)))
  queries = pad(q, 0, padded - length).reshape(batch * blocks, block, heads, head_dim)

  def neighbourhoods(x):  # [B, T, N, H] -> [B * blocks, 3 block, N, H]: blocks i - 1, i, i + 1
    x = pad(x, block, padded - length + block).reshape(batch, blocks + 2, block, heads, head_dim)
    x = jnp.concatenate([x[:, :-2], x[:, 1:-1], x[:, 2:]], axis=2)
    return x.reshape(batch * blocks, 3 * block, heads, head_dim)

  query_pos = jnp.arange(padded).reshape(blocks, block, 1)
  key_pos = (jnp.arange(blocks)[:, None, None] - 1) * block + jnp.arange(3 * block)[None, None, :]
  band = (jnp.abs(query_pos - key_pos) <= context) & (key_pos >= 0) & (key_pos < length)  # [blocks, block, 3 block]
  band = jnp.broadcast_to(band[None, :, None], (batch, blocks, 1, block, 3 * block))
  out = dot_product_attention(queries, neighbourhoods(k), neighbourhoods(v),
                              band.reshape(batch * blocks, 1, block, 3 * block))
  return out.reshape(batch, padded, heads, head_dim)[:, :length]


def cross_attention_mask(cond_mask: jax.Array) -> KeyPrefix:
  """Key mask for cross-attention to the text: [B, S] -> the first `longest` keys (`KeyPrefix`).

  audiocraft passes no key padding mask: padded text positions are zero vectors that still take softmax weight.
  Those positions are kept (reference semantics). Positions past the batch's longest text (padding added to
  bucket shapes and avoid recompiles) are masked out, so bucketing never changes the result.
  """
  return KeyPrefix(jnp.maximum(jnp.max(jnp.sum(cond_mask.astype(jnp.int32), axis=-1)), 1))


def attention_implementation(q: jax.Array, mask: Mask, device=None) -> Literal['cudnn', 'xla']:
  """Which kernel attends q [B, T, N, H] under `mask`: 'cudnn' (`jax.nn.dot_product_attention`'s fused cuDNN flash
  attention) where it applies, else 'xla' (`dot_product_attention`).

  cuDNN takes an NVIDIA GPU of compute capability >= 8.0, float16/bfloat16 q, k, v, a head dim that is a multiple
  of 8 up to 128, and no mask (level 0's full attention) or a `KeyPrefix` (the text, as key lengths). Arbitrary
  masks would go to cuDNN as a [B, N, T, S] bias, which defeats the fused kernel, and its sliding window is
  one-sided, so the banded levels > 0 (`local_attention`), causal and cached masks and float32 stay on XLA.

  Args:
    q: the queries (only the dtype and head dim are read).
    mask: what `MultiHeadAttention` got (after a `LevelAttention` picked its branch).
    device: the device it runs on (anything with platform, device_kind, compute_capability); default: the first.
  """
  device = device or jax.devices()[0]
  nvidia = device.platform == 'gpu' and 'nvidia' in device.device_kind.lower()
  capability = tuple(int(x) for x in str(getattr(device, 'compute_capability', '0.0')).split('.'))
  if (nvidia and capability >= (8, 0) and q.dtype in (jnp.bfloat16, jnp.float16)
      and q.shape[-1] % 8 == 0 and q.shape[-1] <= 128 and (mask is None or isinstance(mask, KeyPrefix))):
    return 'cudnn'
  return 'xla'


def attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: Mask) -> jax.Array:
  """Multi-head attention of q [B, T, N, H] to k, v [B, S, N, H] under any `Mask` -> [B, T, N, H], on the kernel
  `attention_implementation` picks: a `LevelAttention` runs only its level's branch (`lax.cond`; level 0 full
  attention, levels > 0 `local_attention`)."""
  if isinstance(mask, LevelAttention):
    return jax.lax.cond(mask.level == 0, lambda: attend(q, k, v, None),
                        lambda: local_attention(q, k, v, mask.context))
  if attention_implementation(q, mask) == 'cudnn':
    lengths = None if mask is None else jnp.full((q.shape[0],), mask.length, jnp.int32)
    try:
      return jax.nn.dot_product_attention(q, k, v, key_value_seq_lengths=lengths, implementation='cudnn')
    except (NotImplementedError, RuntimeError, ValueError) as e:  # JAX's checks at trace time: cuDNN rejects it
      logging.warning('cuDNN attention unavailable for q %s, k %s (%s); using XLA', q.shape, k.shape, e)
  return dot_product_attention(q, k, v, mask.mask(k.shape[1]) if isinstance(mask, KeyPrefix) else mask)


class MultiHeadAttention(nn.Module):
  """Bias-free multi-head attention: queries from x [B, T, D], keys/values from source [B, S, D] -> [B, T, D].

  `mask`: bool, broadcastable to [B, N, T, S] (True = attend), None (everywhere), a `LevelAttention` or a
  `KeyPrefix` (see `attend`).

  `kv` replaces the source's keys/values ([B, S, N, H] each), e.g. a decoding cache (`keys_values` computes them).
  """
  config: MagnetConfig

  def setup(self):
    cfg = self.config
    shape, axes = (cfg.dim, cfg.num_heads, cfg.head_dim), ('embed', 'heads', 'kv')
    self.query = param(self, 'query', shape, axes, cfg.dim, cfg)
    self.key = param(self, 'key', shape, axes, cfg.dim, cfg)
    self.value = param(self, 'value', shape, axes, cfg.dim, cfg)
    self.out = param(self, 'out', (cfg.num_heads, cfg.head_dim, cfg.dim), ('heads', 'kv', 'embed'), cfg.dim, cfg)

  def keys_values(self, source: jax.Array) -> tuple[jax.Array, jax.Array]:
    """source [B, S, D] -> keys, values [B, S, N, H]."""
    return (jnp.einsum('bsd,dnh->bsnh', source, self.key), jnp.einsum('bsd,dnh->bsnh', source, self.value))

  def __call__(self, x: jax.Array, source: jax.Array | None, mask: Mask,
               kv: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
    q = jnp.einsum('btd,dnh->btnh', x, self.query)
    q = nn.with_logical_constraint(q, ('act_batch', 'act_length', 'act_heads', 'act_kv'))
    k, v = self.keys_values(source) if kv is None else kv
    return jnp.einsum('btnh,nhd->btd', attend(q, k, v, mask), self.out)


def cached_causal_mask(index: jax.Array | int, length: int, max_length: int) -> jax.Array:
  """[1, 1, n, S_max] bool: queries at positions index .. index + n - 1 attend to cached keys at positions <= own."""
  queries = index + jnp.arange(length)[:, None]
  return (jnp.arange(max_length)[None, :] <= queries)[None, None]
