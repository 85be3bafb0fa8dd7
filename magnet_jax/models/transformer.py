"""audiocraft's StreamingTransformer as used by MAGNeT: pre-norm layers of self-attention, cross-attention to the
text condition and a GELU MLP, with sinusoidal positions added to the input.

Autoregressive decoding (the rescorer's and Hybrid-MAGNeT's prefix) passes an explicit KV cache, a dict of arrays
with a leading layer axis (see `magnet_jax.models.lm.init_cache`), through the same layers.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from magnet_jax.models.attention import KeyPrefix, MultiHeadAttention, SelfMask
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.layers import Mlp, layer_norm, sin_embedding

Cache = dict[str, jax.Array | None]


class TransformerLayer(nn.Module):
  """x + SA(norm1 x); x + XA(norm_cross x, text); x + MLP(norm2 x). Shapes: x [B, T, D], text [B, S, D].

  With a `cache` (this layer's {'key', 'value': [B, S_max, N, H], 'text_key', 'text_value': [B, S, N, H] or None})
  x holds positions index .. index + T - 1: their keys/values are written into the cache and attended together
  with the cached ones; the text's keys/values are computed once (when None) and reused.
  """
  config: MagnetConfig

  @nn.compact
  def __call__(self, x: jax.Array, text: jax.Array, self_mask: SelfMask, cross_mask: KeyPrefix,
               cache: Cache | None = None, index: jax.Array | None = None) -> tuple[jax.Array, Cache | None]:
    cfg = self.config
    h = layer_norm(cfg, 'norm1')(x)
    self_attn = MultiHeadAttention(cfg, name='self_attn')
    if cache is None:
      x = x + self_attn(h, h, self_mask)
    else:
      keys, values = self_attn.keys_values(h)
      cache = dict(cache)
      for name, new in (('key', keys), ('value', values)):
        cache[name] = jax.lax.dynamic_update_slice_in_dim(cache[name], new.astype(cache[name].dtype), index, axis=1)
      x = x + self_attn(h, None, self_mask, kv=(cache['key'], cache['value']))
    h = layer_norm(cfg, 'norm_cross')(x)
    cross_attn = MultiHeadAttention(cfg, name='cross_attention')
    if cache is None:
      x = x + cross_attn(h, text, cross_mask)
    else:
      if cache['text_key'] is None:
        cache['text_key'], cache['text_value'] = cross_attn.keys_values(text)
      x = x + cross_attn(h, None, cross_mask, kv=(cache['text_key'], cache['text_value']))
    h = layer_norm(cfg, 'norm2')(x)
    x = x + Mlp(cfg, name='mlp')(h)
    x = nn.with_logical_constraint(x, ('act_batch', 'act_length', 'act_embed'))
    return x, cache


class Transformer(nn.Module):
  """The layer stack: [B, T, D] -> [B, T, D] (before the LM's final norm), and the updated cache if one is given.

  With `config.scan_layers` the L layers are one `nn.scan` (compiled once; parameters and cache entries get a
  leading 'layers' axis), otherwise a Python loop over `layers_{i}` (the cache keeps its leading layer axis).
  """
  config: MagnetConfig

  @nn.compact
  def __call__(self, x: jax.Array, text: jax.Array, self_mask: SelfMask, cross_mask: KeyPrefix,
               cache: Cache | None = None, index: jax.Array | None = None) -> tuple[jax.Array, Cache | None]:
    cfg = self.config
    x = x + sin_embedding(x.shape[1], cfg.dim, cfg.max_period, 0 if index is None else index).astype(x.dtype)
    layer = nn.remat(TransformerLayer, prevent_cse=not cfg.scan_layers) if cfg.remat else TransformerLayer
    if cfg.scan_layers:
      stack = nn.scan(layer, variable_axes={'params': 0}, split_rngs={'params': True},
                      in_axes=(nn.broadcast, nn.broadcast, nn.broadcast, 0, nn.broadcast), length=cfg.num_layers,
                      metadata_params={nn.PARTITION_NAME: 'layers'})
      return stack(cfg, name='layers')(x, text, self_mask, cross_mask, cache, index)
    caches = []
    for i in range(cfg.num_layers):
      layer_cache = None if cache is None else jax.tree.map(lambda c, i=i: c[i], cache)
      x, layer_cache = layer(cfg, name=f'layers_{i}')(x, text, self_mask, cross_mask, layer_cache, index)
      caches.append(layer_cache)
    return x, None if cache is None else jax.tree.map(lambda *c: jnp.stack(c), *caches)
