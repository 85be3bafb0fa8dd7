"""Building blocks shared by the T5 and BERT text encoders: masked multi-head attention and the feed-forward.

Shapes: B batch, S text tokens, D model dim, N heads, H head dim, F mlp dim.
Matmuls default to `Precision.HIGHEST` so fp32 results match the PyTorch references on GPU/TPU too (text
encoding runs once per generation; its cost is negligible next to the LM).
"""
import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

# transformers' `ACT2FN` names used by T5 (`dense_act_fn`) and BERT (`hidden_act`) configs.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'relu': nn.relu,
    'gelu': functools.partial(nn.gelu, approximate=False),
    'gelu_new': functools.partial(nn.gelu, approximate=True),
    'gelu_pytorch_tanh': functools.partial(nn.gelu, approximate=True),
    'silu': nn.silu,
}

HIGHEST = jax.lax.Precision.HIGHEST


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
  """Returns the activation named by a transformers config, or raises a ValueError listing the supported ones."""
  if name not in ACTIVATIONS:
    raise ValueError(f'unsupported activation {name!r}; supported: {sorted(ACTIVATIONS)}')
  return ACTIVATIONS[name]


def attention_bias(mask: jax.Array, bias: jax.Array | None = None) -> jax.Array:
  """Additive attention bias from a key padding mask, as transformers builds it.

  Masked keys get `finfo(float32).min`. A row whose keys are all masked (an empty prompt, see audiocraft's
  T5Conditioner) therefore gets equal logits everywhere and attends uniformly to all positions, exactly like the
  reference; it does not produce NaNs.

  Args:
    mask: [B, S] bool, True for real tokens.
    bias: optional [1|B, N, S, S] additive bias (T5's relative position bias).

  Returns:
    [B, 1|N, 1|S, S] float32 bias to add to the attention logits.
  """
  keys = mask[:, None, None, :]
  if bias is None:
    bias = jnp.zeros((), jnp.float32)
  return jnp.where(keys, bias, jnp.finfo(jnp.float32).min)


class SelfAttention(nn.Module):
  """Self-attention with q/k/v/o projections and an additive logits bias.

  Attributes:
    num_heads: N.
    head_dim: H (T5's `d_kv`; N * H may differ from D).
    use_bias: projections with biases (BERT) or without (T5).
    scale: logits multiplier (1 / sqrt(H) for BERT, 1.0 for T5, which folds it into its initialisation).
    precision: matmul precision.
  """
  num_heads: int
  head_dim: int
  use_bias: bool
  scale: float
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array, bias: jax.Array) -> jax.Array:
    """Attends x to itself.

    Args:
      x: [B, S, D] float32.
      bias: additive logits bias broadcastable to [B, N, S, S] (see `attention_bias`).

    Returns:
      [B, S, D].
    """
    dense = functools.partial(nn.Dense, use_bias=self.use_bias, precision=self.precision)
    split = lambda y: y.reshape(*y.shape[:-1], self.num_heads, self.head_dim)
    inner = self.num_heads * self.head_dim
    q = split(dense(inner, name='q')(x))
    k = split(dense(inner, name='k')(x))
    v = split(dense(inner, name='v')(x))
    logits = jnp.einsum('bqnh,bknh->bnqk', q, k, precision=self.precision) * self.scale + bias
    weights = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum('bnqk,bknh->bqnh', weights, v, precision=self.precision)
    return dense(x.shape[-1], name='o')(out.reshape(*out.shape[:2], inner))


class FeedForward(nn.Module):
  """Position-wise MLP: `wo(act(wi x))`, or `wo(act(wi_0 x) * wi_1 x)` when gated (T5 v1.1 / flan).

  Attributes:
    hidden_dim: F.
    act: activation name (see `ACTIVATIONS`).
    gated: gated-linear-unit variant.
    use_bias: projections with biases (BERT) or without (T5).
    precision: matmul precision.
  """
  hidden_dim: int
  act: str
  gated: bool
  use_bias: bool
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [B, S, D] to [B, S, D]."""
    dense = functools.partial(nn.Dense, use_bias=self.use_bias, precision=self.precision)
    act = activation(self.act)
    if self.gated:
      h = act(dense(self.hidden_dim, name='wi_0')(x)) * dense(self.hidden_dim, name='wi_1')(x)
    else:
      h = act(dense(self.hidden_dim, name='wi')(x))
    return dense(x.shape[-1], name='wo')(h)


class EncoderLayer(nn.Module):
  """One encoder layer: residual self-attention, then a residual feed-forward block, normalised before each (T5)
  or after each residual sum (BERT). Submodules: attn_norm, attn, ffn, ffn_norm (the converters' names).

  Attributes:
    num_heads, head_dim, use_bias, scale: the attention (`SelfAttention`).
    mlp_dim, act, gated: the feed-forward block (`FeedForward`).
    norm: makes a normalisation layer given its name (LayerNorm for BERT, RMSNorm for T5).
    pre_norm: True: x + f(norm(x)); False: norm(x + f(x)).
    precision: matmul precision.
  """
  num_heads: int
  head_dim: int
  use_bias: bool
  scale: float
  mlp_dim: int
  act: str
  gated: bool
  norm: Callable[..., nn.Module]
  pre_norm: bool
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array, bias: jax.Array) -> jax.Array:
    """Maps x [B, S, D] with a logits bias broadcastable to [B, N, S, S] to [B, S, D]."""
    attention = SelfAttention(self.num_heads, self.head_dim, self.use_bias, self.scale, self.precision,
                                   name='attn')
    ffn = FeedForward(self.mlp_dim, self.act, self.gated, self.use_bias, self.precision, name='ffn')
    attn_norm, ffn_norm = self.norm(name='attn_norm'), self.norm(name='ffn_norm')
    if self.pre_norm:
      x = x + attention(attn_norm(x), bias)
      return x + ffn(ffn_norm(x))
    x = attn_norm(x + attention(x, bias))
    return ffn_norm(x + ffn(x))
