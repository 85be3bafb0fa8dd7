"""audiocraft's StreamableConv1d / StreamableConvTranspose1d padding semantics, channels-last.

Activations here are [B, L, C] (batch, time, channels). Kernels are [K, C_in, C_out] with
kernel[k, i, o] = torch_weight[o, i, k] for a convolution and torch_weight[i, o, k] for a transposed one;
weight norm is folded into them at load time (`magnet_jax.codec.convert`).

A convolution pads `kernel - stride` samples (split right-heavy-left for odd totals, or all left when causal)
plus `extra` samples on the right so that the last window is full: the output has ceil(L / stride) steps and
the mirrored transposed convolution gives back stride * ceil(L / stride) samples.
"""
import math

import jax
import jax.numpy as jnp
from flax import linen as nn

# PyTorch's default Conv1d / ConvTranspose1d / LSTM init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch_default_init = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')

_DIMENSIONS = ('NWC', 'WIO', 'NWC')


def extra_padding(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
  """Right padding that makes the last window of a strided convolution full (audiocraft
  `get_extra_padding_for_conv1d`, in exact integer arithmetic)."""
  n_steps = -(-(length - kernel_size + padding_total) // stride)  # ceil(n_frames) - 1
  return n_steps * stride + kernel_size - padding_total - length


def pad1d(x: jax.Array, left: int, right: int, mode: str) -> jax.Array:
  """Pads the time axis of x [B, L, C]; 'reflect' on an input shorter than the padding first appends zeros.

  Matches audiocraft/transformers `pad1d`: torch reflection needs L > pad, so short inputs are zero-extended on
  the right, reflected, and the extension is cut off again.
  """
  if mode == 'constant':
    return jnp.pad(x, ((0, 0), (left, right), (0, 0)))
  zeros = max(max(left, right) - x.shape[1] + 1, 0)
  x = jnp.pad(x, ((0, 0), (0, zeros), (0, 0)))
  x = jnp.pad(x, ((0, 0), (left, right), (0, 0)), mode='reflect')
  return x[:, :x.shape[1] - zeros]


class Conv1d(nn.Module):
  """StreamableConv1d: x [B, L, C_in] -> [B, ceil(L / stride), features]."""
  features: int
  kernel_size: int
  stride: int = 1
  dilation: int = 1
  causal: bool = False
  pad_mode: str = 'reflect'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', torch_default_init, (self.kernel_size, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    effective_kernel = (self.kernel_size - 1) * self.dilation + 1
    padding_total = effective_kernel - self.stride
    extra = extra_padding(x.shape[1], effective_kernel, self.stride, padding_total)
    if self.causal:
      left, right = padding_total, extra
    else:
      left = padding_total - padding_total // 2
      right = padding_total // 2 + extra
    x = pad1d(x, left, right, self.pad_mode)
    y = jax.lax.conv_general_dilated(
        x, kernel, window_strides=(self.stride,), padding='VALID', rhs_dilation=(self.dilation,),
        dimension_numbers=_DIMENSIONS)
    return y + bias


class ConvTranspose1d(nn.Module):
  """StreamableConvTranspose1d: x [B, T, C_in] -> [B, T * stride, features] (fixed padding trimmed)."""
  features: int
  kernel_size: int
  stride: int
  causal: bool = False
  trim_right_ratio: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', torch_default_init, (self.kernel_size, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    # y[t * stride + k] += x[t] @ kernel[k]: a convolution of the stride-dilated, fully padded input with the
    # time-reversed kernel; output length (T - 1) * stride + kernel_size.
    pad = self.kernel_size - 1
    y = jax.lax.conv_general_dilated(
        x, kernel[::-1], window_strides=(1,), padding=((pad, pad),), lhs_dilation=(self.stride,),
        dimension_numbers=_DIMENSIONS) + bias
    padding_total = self.kernel_size - self.stride
    if self.causal:
      right = math.ceil(padding_total * self.trim_right_ratio)
    else:
      right = padding_total // 2
    left = padding_total - right
    return y[:, left:y.shape[1] - right]
