"""MusicGen's delay codebook pattern (audiocraft's `DelayedPatternProvider`, delays 0 .. K-1), used by the
autoregressive rescorer and by Hybrid-MAGNeT.

Sequence step 0 holds the special token (id `card`, which is also MAGNeT's mask token); step s holds level q's
frame s - 1 - q, or the special token where that frame does not exist. With the full layout (audiocraft's
`keep_only_valid_steps=False`) T frames take S = T + K steps, and a causal LM's output at step t + q predicts
level q's frame t.
"""
import jax
import jax.numpy as jnp


def delay_codes(codes: jax.Array, special: int) -> jax.Array:
  """[B, K, T] codes -> [B, K, T + K] delayed sequence."""
  codes = jnp.asarray(codes)
  batch, levels, _ = codes.shape
  pad = lambda n: jnp.full((batch, n), special, codes.dtype)
  return jnp.stack([jnp.concatenate([pad(1 + q), codes[:, q], pad(levels - 1 - q)], axis=-1)
                    for q in range(levels)], axis=1)


def undelay_codes(sequence: jax.Array, length: int) -> jax.Array:
  """[B, K, S] delayed sequence -> [B, K, T] codes (level q's frame t from step t + 1 + q)."""
  return jnp.stack([sequence[:, q, 1 + q:1 + q + length] for q in range(sequence.shape[1])], axis=1)


def level_predictions(step_outputs: jax.Array, level: jax.Array | int, length: int) -> jax.Array:
  """[B, S, ...] per-step outputs of a level's head -> [B, T, ...] aligned with that level's frames (steps
  level .. level + T - 1; `level` may be traced)."""
  return jax.lax.dynamic_slice_in_dim(step_outputs, level, length, axis=1)
