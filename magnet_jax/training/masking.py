"""MAGNeT's masking: the cosine schedule and span masks (audiocraft's MagnetSolver `_get_mask`).

Training masks spans of `span_len` frames: u span starts are drawn uniformly without replacement and each start
masks itself and the next span_len - 1 frames. u is looked up so that the *expected* masked fraction equals the
target rate: with u random starts, P(frame masked) = 1 - C(T - L, u) / C(T, u) (paper, appendix C).
"""
import jax
import jax.numpy as jnp
import numpy as np


def mask_rate_to_num_spans(length: int, span_len: int) -> np.ndarray:
  """LUT [101] int32: masking percentage m -> number of span starts u giving mean mask rate ~ m / 100.

  Exactly audiocraft's `_calc_mean_maskrate_to_u_LUT(T)` (searchsorted over the rates of u = 0 .. T - 1).
  """
  u2mean = [0.0]
  v = (length - span_len) / float(length)
  for u in range(1, length):
    u2mean.append(1 - v)
    v *= (length - span_len - u) / (length - u)
  return np.searchsorted(np.asarray(u2mean), np.arange(101) / 100.0).astype(np.int32)


def _random_subset(rng: jax.Array, counts: jax.Array, length: int) -> jax.Array:
  """[B] counts -> bool [B, T] with counts[b] positions chosen uniformly without replacement per row."""
  ranks = jnp.argsort(jax.random.uniform(rng, (counts.shape[0], length)), axis=-1)
  return ranks < counts[:, None]


def spans_from_starts(starts: jax.Array, span_len: int) -> jax.Array:
  """bool [..., T] span starts -> bool [..., T]: each start masks itself and the next span_len - 1 frames."""
  mask = starts
  for shift in range(1, span_len):
    shifted = jnp.pad(starts[..., :-shift], [(0, 0)] * (starts.ndim - 1) + [(shift, 0)])
    mask = jnp.logical_or(mask, shifted)
  return mask


def span_mask(rng: jax.Array, mask_rate: jax.Array, length: int, span_len: int) -> jax.Array:
  """Span mask with per-example expected rate: mask_rate [B] in [0, 1] -> bool [B, T].

  span_len > 1: u = LUT[round(100 rate)] (at least 1) random span starts, spans of span_len frames.
  span_len == 1: round(T rate) (at least 1) random single frames.
  """
  if span_len <= 1:
    counts = jnp.maximum(jnp.round(length * mask_rate), 1).astype(jnp.int32)
    return _random_subset(rng, counts, length)
  lut = jnp.asarray(mask_rate_to_num_spans(length, span_len))
  counts = jnp.maximum(lut[jnp.round(100 * mask_rate).astype(jnp.int32)], 1)
  return spans_from_starts(_random_subset(rng, counts, length), span_len)
