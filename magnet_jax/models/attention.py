"""Multi-head attention and MAGNeT's restricted-context (per-level) self-attention masks."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from magnet_jax.config import MagnetConfig
from magnet_jax.models.layers import param


def self_attention_mask(config: MagnetConfig, length: int, stage: jax.Array | int) -> jax.Array | None:
  """Boolean self-attention mask for the level being predicted (True = attend).

  Level 0 attends to the whole sequence; levels k > 0 only to |i - j| <= subcodes_context (audiocraft's
  `restricted_context_attn_mask`), because upper RVQ levels depend on nearby frames only. A causal config (the
  autoregressive rescorer) gets a lower-triangular mask whatever the stage.

  Args:
    config: the LM config.
    length: T.
    stage: level being predicted: a Python int, a traced scalar, or a per-example [B] array.

  Returns:
    None (attend everywhere) or a mask broadcastable to [B, N, T, T]: [1, 1, T, T] for a scalar stage,
    [B, 1, T, T] for a per-example stage.
  """
  i = jnp.arange(length)[:, None]
  j = jnp.arange(length)[None, :]
  if config.causal:
    return (j <= i)[None, None]
  if config.subcodes_context < 0:
    return None
  if isinstance(stage, int):
    return None if stage == 0 else (jnp.abs(i - j) <= config.subcodes_context)[None, None]
  local = jnp.abs(i - j) <= config.subcodes_context
  stage = jnp.asarray(stage)
  full = (stage == 0).reshape(stage.shape + (1, 1, 1))
  mask = jnp.logical_or(local[None, None], full)
  return mask if stage.ndim else mask.reshape(1, 1, length, length)


def cross_attention_mask(cond_mask: jax.Array) -> jax.Array:
  """Key mask for cross-attention to the text: [B, S] -> [1, 1, 1, S].

  audiocraft passes no key padding mask: padded text positions are zero vectors that still take softmax weight.
  Those positions are kept (reference semantics). Positions past the batch's longest text (padding added to
  bucket shapes and avoid recompiles) are masked out, so bucketing never changes the result.
  """
  longest = jnp.maximum(jnp.max(jnp.sum(cond_mask.astype(jnp.int32), axis=-1)), 1)
  return (jnp.arange(cond_mask.shape[-1]) < longest)[None, None, None, :]


class MultiHeadAttention(nn.Module):
  """Bias-free multi-head attention: queries from x [B, T, D], keys/values from source [B, S, D] -> [B, T, D].

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

  def __call__(self, x: jax.Array, source: jax.Array | None, mask: jax.Array | None,
               kv: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
    q = jnp.einsum('btd,dnh->btnh', x, self.query)
    q = nn.with_logical_constraint(q, ('act_batch', 'act_length', 'act_heads', 'act_kv'))
    k, v = self.keys_values(source) if kv is None else kv
    out = jax.nn.dot_product_attention(q, k, v, mask=mask)
    return jnp.einsum('btnh,nhd->btd', out, self.out)


def cached_causal_mask(index: jax.Array | int, length: int, max_length: int) -> jax.Array:
  """[1, 1, n, S_max] bool: queries at positions index .. index + n - 1 attend to cached keys at positions <= own."""
  queries = index + jnp.arange(length)[:, None]
  return (jnp.arange(max_length)[None, :] <= queries)[None, None]
