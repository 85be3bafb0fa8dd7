"""Residual vector quantizer (audiocraft/quantization/core_vq.py), euclidean nearest neighbour."""
import jax
import jax.numpy as jnp
from flax import linen as nn

# audiocraft's uniform_init (kaiming_uniform_ over [bins, D]); k-means initialisation is the trainer's business.
_codebook_init = nn.initializers.variance_scaling(2.0, 'fan_in', 'uniform', in_axis=-1, out_axis=-2, batch_axis=(0,))


def nearest(codebook: jax.Array, x: jax.Array) -> jax.Array:
  """Index of the nearest codebook entry, in audiocraft's distance arithmetic.

  Args:
    codebook: [V, D] entries.
    x: [..., D] vectors.

  Returns:
    int32 indices [...].
  """
  dot = jnp.einsum('...d,vd->...v', x, codebook, precision=jax.lax.Precision.HIGHEST)
  dist = -(jnp.sum(x**2, axis=-1, keepdims=True) - 2 * dot + jnp.sum(codebook**2, axis=-1))
  return jnp.argmax(dist, axis=-1).astype(jnp.int32)


def rvq_encode(codebooks: jax.Array, latent: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Quantizes each residual with the next codebook.

  Args:
    codebooks: [K, V, D].
    latent: [B, T, D].

  Returns:
    codes [B, K, T] int32 and their quantized sum [B, T, D].
  """
  residual = latent
  quantized = jnp.zeros_like(latent)
  codes = []
  for codebook in codebooks:
    index = nearest(codebook, residual)
    entry = codebook[index]
    residual = residual - entry
    quantized = quantized + entry
    codes.append(index)
  return jnp.stack(codes, axis=1), quantized


def rvq_decode(codebooks: jax.Array, codes: jax.Array) -> jax.Array:
  """Sum of the codebook entries: codes [B, K, T] (K <= codebooks.shape[0]) -> latent [B, T, D]."""
  if codes.shape[1] > codebooks.shape[0]:
    raise ValueError(f'codes hold {codes.shape[1]} codebooks, the quantizer has {codebooks.shape[0]}')
  return sum(codebooks[k][codes[:, k]] for k in range(codes.shape[1]))


class ResidualVectorQuantizer(nn.Module):
  """Holds the codebooks: parameter `codebooks` [n_q, bins, dimension]."""
  n_q: int
  bins: int
  dimension: int

  def setup(self):
    self.codebooks = self.param('codebooks', _codebook_init, (self.n_q, self.bins, self.dimension))

  def __call__(self, latent: jax.Array) -> tuple[jax.Array, jax.Array]:
    """latent [B, T, D] -> codes [B, K, T] int32, quantized latent [B, T, D] (differentiable in the codebooks)."""
    return rvq_encode(self.codebooks, latent)

  def decode(self, codes: jax.Array) -> jax.Array:
    """codes [B, K, T] -> latent [B, T, D], the sum of the first K codebooks' entries."""
    return rvq_decode(self.codebooks, codes)
