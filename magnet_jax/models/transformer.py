"""audiocraft's StreamingTransformer as used by MAGNeT: pre-norm layers of self-attention, cross-attention to the
text condition and a GELU MLP, with sinusoidal positions added to the input."""
import flax.linen as nn
import jax

from magnet_jax.config import MagnetConfig
from magnet_jax.models.attention import MultiHeadAttention
from magnet_jax.models.layers import Mlp, layer_norm, sin_embedding


class TransformerLayer(nn.Module):
  """x + SA(norm1 x); x + XA(norm_cross x, text); x + MLP(norm2 x). Shapes: x [B, T, D], text [B, S, D]."""
  config: MagnetConfig

  @nn.compact
  def __call__(self, x: jax.Array, text: jax.Array, self_mask: jax.Array | None,
               cross_mask: jax.Array) -> tuple[jax.Array, None]:
    cfg = self.config
    h = layer_norm(cfg, 'norm1')(x)
    x = x + MultiHeadAttention(cfg, name='self_attn')(h, h, self_mask)
    h = layer_norm(cfg, 'norm_cross')(x)
    x = x + MultiHeadAttention(cfg, name='cross_attention')(h, text, cross_mask)
    h = layer_norm(cfg, 'norm2')(x)
    x = x + Mlp(cfg, name='mlp')(h)
    x = nn.with_logical_constraint(x, ('act_batch', 'act_length', 'act_embed'))
    return x, None


class Transformer(nn.Module):
  """The layer stack: [B, T, D] -> [B, T, D] (before the LM's final norm).

  With `config.scan_layers` the L layers are one `nn.scan` (compiled once; parameters get a leading 'layers'
  axis), otherwise a Python loop over `layers_{i}`.
  """
  config: MagnetConfig

  @nn.compact
  def __call__(self, x: jax.Array, text: jax.Array, self_mask: jax.Array | None,
               cross_mask: jax.Array) -> jax.Array:
    cfg = self.config
    x = x + sin_embedding(x.shape[1], cfg.dim, cfg.max_period).astype(x.dtype)
    layer = nn.remat(TransformerLayer, prevent_cse=not cfg.scan_layers) if cfg.remat else TransformerLayer
    if cfg.scan_layers:
      stack = nn.scan(layer, variable_axes={'params': 0}, split_rngs={'params': True},
                      in_axes=(nn.broadcast, nn.broadcast, nn.broadcast), length=cfg.num_layers,
                      metadata_params={nn.PARTITION_NAME: 'layers'})
      x, _ = stack(cfg, name='layers')(x, text, self_mask, cross_mask)
      return x
    for i in range(cfg.num_layers):
      x, _ = layer(cfg, name=f'layers_{i}')(x, text, self_mask, cross_mask)
    return x
