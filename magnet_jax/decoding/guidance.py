"""Classifier-free guidance as audiocraft batches it: one forward over [conditions; null conditions]."""
import jax
import jax.numpy as jnp


def with_null_conditions(cond: jax.Array, cond_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """[B, S, Dt], [B, S] -> the CFG batch [2B, S, Dt], [2B, S]: the conditions, then null ones (zeros, all-False
  mask, same padded length), as audiocraft tokenizes `conditions + null_conditions` together."""
  return (jnp.concatenate([cond, jnp.zeros_like(cond)]),
          jnp.concatenate([cond_mask, jnp.zeros_like(cond_mask)]))


def guide(logits: jax.Array, coef: jax.Array | float) -> jax.Array:
  """[2B, ...] logits of the CFG batch -> [B, ...]: uncond + (cond - uncond) * coef."""
  cond_logits, uncond_logits = jnp.split(logits, 2)
  return uncond_logits + (cond_logits - uncond_logits) * coef
