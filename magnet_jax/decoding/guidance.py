"""Classifier-free guidance as audiocraft batches it: one forward over [conditions; unconditional half].

The unconditional half is the null condition (zeros, all-False mask) by default, or any other text states given
as data, e.g. a negative prompt's: guidance then steers away from that text instead of from no text, in the same
compiled program.
"""
from collections.abc import Callable

import jax
import jax.numpy as jnp

# (uncond [B, S, Dt], uncond_mask [B, S]): the unconditional half of the CFG batch; None: the null condition.
Uncond = tuple[jax.Array, jax.Array] | None


def with_null_conditions(cond: jax.Array, cond_mask: jax.Array,
                         uncond: Uncond = None) -> tuple[jax.Array, jax.Array]:
  """[B, S, Dt], [B, S] -> the CFG batch [2B, S, Dt], [2B, S]: the conditions, then `uncond` (default: null ones,
  zeros with an all-False mask of the same padded length, as audiocraft tokenizes `conditions + null_conditions`
  together)."""
  if uncond is None:
    uncond = jnp.zeros_like(cond), jnp.zeros_like(cond_mask)
  elif uncond[0].shape != cond.shape or uncond[1].shape != cond_mask.shape:
    raise ValueError(f'the unconditional half {uncond[0].shape}, {uncond[1].shape} must be shaped like the '
                     f'conditions {cond.shape}, {cond_mask.shape}')
  return jnp.concatenate([cond, uncond[0].astype(cond.dtype)]), jnp.concatenate([cond_mask, uncond[1].astype(bool)])


def cfg_forward(forward: Callable[..., jax.Array], cond: jax.Array, cond_mask: jax.Array,
                uncond: Uncond = None) -> Callable[..., jax.Array]:
  """The prologue every guided forward shares: `forward(inputs [2B, ...], cond [2B, S, Dt], mask [2B, S], *args)`
  as a function of inputs [B, ...] and *args, run once over [inputs; inputs] with [conditions; unconditional half]
  (`with_null_conditions`). Its outputs are those of the CFG batch, [2B, ...], for `guide`."""
  cfg_cond, cfg_mask = with_null_conditions(cond, cond_mask, uncond)
  return lambda inputs, *args: forward(jnp.concatenate([inputs, inputs]), cfg_cond, cfg_mask, *args)


def guide(logits: jax.Array, coef: jax.Array | float) -> jax.Array:
  """[2B, ...] logits of the CFG batch -> [B, ...]: uncond + (cond - uncond) * coef."""
  cond_logits, uncond_logits = jnp.split(logits, 2)
  return uncond_logits + (cond_logits - uncond_logits) * coef
