"""audiocraft's StreamableLSTM: stacked unidirectional LSTM layers plus a skip connection, channels-last."""
import jax
import jax.numpy as jnp
from flax import linen as nn

from magnet_jax.codec.conv import torch_default_init


def lstm_layer(x: jax.Array, w_ih: jax.Array, w_hh: jax.Array, bias: jax.Array) -> jax.Array:
  """One torch.nn.LSTM layer from a zero state.

  Args:
    x: inputs [B, T, D].
    w_ih: input kernel [D, 4H], gate blocks in torch order (input, forget, cell, output).
    w_hh: recurrent kernel [H, 4H].
    bias: bias_ih + bias_hh [4H].

  Returns:
    Hidden states [B, T, H].
  """
  gates_x = jnp.einsum('btd,dg->tbg', x, w_ih) + bias  # time-major for the scan

  def step(carry, gates_t):
    h, c = carry
    i, f, g, o = jnp.split(gates_t + h @ w_hh, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c), h

  zeros = jnp.zeros((x.shape[0], w_hh.shape[0]), x.dtype)
  _, hs = jax.lax.scan(step, (zeros, zeros), gates_x)
  return hs.transpose(1, 0, 2)


class LSTM(nn.Module):
  """`num_layers` LSTM layers of width D with a skip: x [B, T, D] -> lstm(x) + x [B, T, D].

  Parameters per layer l: `w_ih_l{l}` [D, 4D], `w_hh_l{l}` [D, 4D], `bias_l{l}` [4D].
  """
  num_layers: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    dim = x.shape[-1]
    y = x
    for layer in range(self.num_layers):
      w_ih = self.param(f'w_ih_l{layer}', torch_default_init, (dim, 4 * dim))
      w_hh = self.param(f'w_hh_l{layer}', torch_default_init, (dim, 4 * dim))
      bias = self.param(f'bias_l{layer}', nn.initializers.zeros, (4 * dim,))
      y = lstm_layer(y, w_ih, w_hh, bias)
    return y + x
