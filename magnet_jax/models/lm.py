"""MAGNeT's language model: per-level embeddings summed, the transformer, one output head per level.

Weight-compatible with audiocraft's `MagnetLMModel` (and MusicGen's `LMModel`, which has the same layout and
serves as the autoregressive rescorer with `causal=True`).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from magnet_jax.models.attention import cached_causal_mask, cross_attention_mask, level_self_attention
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.layers import layer_norm, param
from magnet_jax.models.transformer import Cache, Transformer


class Embedder(nn.Module):
  """[B, K, T] codes -> [B, T, D]: sum over levels of each level's embedding (card + 1 rows; the last is MASK)."""
  config: MagnetConfig

  @nn.compact
  def __call__(self, codes: jax.Array) -> jax.Array:
    cfg = self.config
    if codes.ndim != 3 or codes.shape[1] != cfg.n_q:
      raise ValueError(f'codes must be [B, K={cfg.n_q}, T], got shape {codes.shape}')
    tables = param(self, 'emb', (cfg.n_q, cfg.card + 1, cfg.dim), ('codebooks', 'vocab', 'embed'), cfg.dim, cfg)
    # One gather per level, summed in level order: XLA fuses it into one loop; a single [B, K, T, D] gather reduced
    # over K materialises the gathered tensor.
    x = jnp.take(tables[0], codes[:, 0], axis=0, mode='clip')
    for k in range(1, cfg.n_q):
      x = x + jnp.take(tables[k], codes[:, k], axis=0, mode='clip')
    return nn.with_logical_constraint(x, ('act_batch', 'act_length', 'act_embed'))


class ConditionProjection(nn.Module):
  """[B, S, Dt] text states -> [B, S, D]: audiocraft's conditioner `output_proj` (with bias), zeroed where
  cond_mask [B, S] is False (padding and null conditions)."""
  config: MagnetConfig

  @nn.compact
  def __call__(self, cond: jax.Array, cond_mask: jax.Array) -> jax.Array:
    cfg = self.config
    kernel = param(self, 'kernel', (cfg.text_dim, cfg.dim), ('text_embed', 'embed'), cfg.text_dim, cfg)
    bias = self.param('bias', nn.with_logical_partitioning(nn.initializers.zeros, ('embed',)),
                      (cfg.dim,), cfg.params_dtype).astype(cfg.compute_dtype)
    text = cond.astype(cfg.compute_dtype) @ kernel + bias
    return text * cond_mask[..., None].astype(text.dtype)


class Heads(nn.Module):
  """One bias-free linear head per level: [B, T, D] -> [B, K, T, V], or only level `level`'s -> [B, T, V]."""
  config: MagnetConfig

  @nn.compact
  def __call__(self, h: jax.Array, level: jax.Array | int | None = None) -> jax.Array:
    cfg = self.config
    kernel = param(self, 'kernel', (cfg.n_q, cfg.dim, cfg.card), ('codebooks', 'embed', 'vocab'), cfg.dim, cfg)
    if level is None:
      return jnp.einsum('btd,kdv->bktv', h, kernel).astype(jnp.float32)
    level = jnp.asarray(level)
    if level.ndim == 0:
      return (h @ jnp.take(kernel, level, axis=0)).astype(jnp.float32)
    return jnp.einsum('btd,bdv->btv', h, jnp.take(kernel, level, axis=0)).astype(jnp.float32)


class MagnetLM(nn.Module):
  """MAGNeT LM.

  `apply({'params': p}, codes, cond, cond_mask, level)`:
    codes: [B, K, T] int32 in [0, card]; `card` is the mask token.
    cond: [B, S, Dt] text-encoder states (e.g. T5 last hidden state).
    cond_mask: [B, S] bool, False at padding and for null (CFG) conditions.
    level: level being predicted (Python int, traced scalar or [B]); picks the self-attention mask.
  returns logits [B, K, T, V] (float32). `method=MagnetLM.level_logits` returns only the `level` head's
  [B, T, V], which is all decoding and the masked loss need.
  """
  config: MagnetConfig

  def setup(self):
    cfg = self.config
    self.embedder = Embedder(cfg)
    self.cond_proj = ConditionProjection(cfg)
    self.transformer = Transformer(cfg)
    self.out_norm = layer_norm(cfg, 'out_norm')
    self.heads = Heads(cfg)

  def hidden(self, codes: jax.Array, cond: jax.Array, cond_mask: jax.Array,
             level: jax.Array | int = 0, self_mask: jax.Array | None = None) -> jax.Array:
    """Final normalised hidden states [B, T, D].

    `self_mask` (bool, broadcastable to [B, N, T, T]) replaces the level's self-attention mask, e.g. with
    Hybrid-MAGNeT's semi-autoregressive mask.
    """
    if cond.shape[:2] != cond_mask.shape:
      raise ValueError(f'cond [B, S, Dt] {cond.shape} and cond_mask [B, S] {cond_mask.shape} disagree')
    x = self.embedder(codes)
    text = self.cond_proj(cond, cond_mask)
    if self_mask is None:
      self_mask = level_self_attention(self.config, codes.shape[-1], level)
    x, _ = self.transformer(x, text, self_mask, cross_attention_mask(cond_mask))
    return self.out_norm(x)

  def __call__(self, codes: jax.Array, cond: jax.Array, cond_mask: jax.Array,
               level: jax.Array | int = 0) -> jax.Array:
    """Logits of every level: [B, K, T, V] float32."""
    return self.heads(self.hidden(codes, cond, cond_mask, level))

  def level_logits(self, codes: jax.Array, cond: jax.Array, cond_mask: jax.Array,
                   level: jax.Array | int, self_mask: jax.Array | None = None) -> jax.Array:
    """Logits of level `level` only: [B, T, V] float32 (one head instead of K)."""
    return self.heads(self.hidden(codes, cond, cond_mask, level, self_mask), level)

  def decode(self, codes: jax.Array, cond: jax.Array, cond_mask: jax.Array, cache: Cache,
             index: jax.Array | int) -> tuple[jax.Array, Cache]:
    """Causal forward of new positions with a KV cache (autoregressive sampling).

    Args:
      codes: [B, K, n] codes at sequence positions index .. index + n - 1.
      cond, cond_mask: as in `__call__` (only read while the cache holds no text keys/values yet).
      cache: from `init_cache`, or returned by the previous call.
      index: position of codes[..., 0] (int or traced scalar).

    Returns:
      (logits [B, K, n, V] float32 predicting positions index + 1 .., updated cache). Equal to the uncached
      causal forward's logits at those positions, whatever `config.causal` says.
    """
    x = self.embedder(codes)
    text = self.cond_proj(cond, cond_mask)
    mask = cached_causal_mask(index, codes.shape[-1], cache['key'].shape[2])
    x, cache = self.transformer(x, text, mask, cross_attention_mask(cond_mask), cache, jnp.asarray(index))
    return self.heads(self.out_norm(x)), cache


def init_cache(config: MagnetConfig, batch: int, max_length: int) -> Cache:
  """Empty KV cache for `MagnetLM.decode`: key/value [L, B, S_max, N, H] zeros (compute dtype); the text's
  keys/values (None here) are filled by the first `decode` call, so run that one outside any loop."""
  shape = (config.num_layers, batch, max_length, config.num_heads, config.head_dim)
  zeros = jnp.zeros(shape, config.compute_dtype)
  return {'key': zeros, 'value': zeros, 'text_key': None, 'text_value': None}
