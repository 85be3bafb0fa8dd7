"""Optimizer and train state: AdamW with warmup + cosine/inverse-sqrt/constant schedule, clipping, optional EMA."""
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax


@flax.struct.dataclass
class TrainState:
  """Everything a training step updates; a pytree (sharded by `magnet_jax.training.trainer`)."""
  step: jax.Array           # int32 scalar: optimizer steps taken.
  params: Any               # MagnetLM params (float32).
  opt_state: Any            # optax state.
  ema_params: Any           # exponential moving average of params, or None when optim.ema_decay == 0.


def learning_rate_schedule(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  """Linear warmup to optim.lr over optim.warmup_steps, then optim.schedule."""
  warmup = int(optim.warmup_steps)
  if optim.schedule == 'cosine':
    return optax.warmup_cosine_decay_schedule(
        0.0, optim.lr, warmup_steps=warmup, decay_steps=max(num_steps, warmup + 1),
        end_value=optim.lr * optim.lr_min_ratio)
  if optim.schedule == 'inverse_sqrt':
    return lambda step: optim.lr * jnp.minimum((step + 1) / max(warmup, 1), jnp.sqrt(max(warmup, 1) / (step + 1)))
  if optim.schedule == 'constant':
    return optax.linear_schedule(0.0, optim.lr, max(warmup, 1)) if warmup else optax.constant_schedule(optim.lr)
  raise ValueError(f"optim.schedule={optim.schedule!r}; expected 'cosine', 'inverse_sqrt' or 'constant'")


def make_optimizer(optim: ml_collections.ConfigDict, num_steps: int) -> optax.GradientTransformation:
  """Global-norm clipping (optim.max_norm, 0 = off) then AdamW; weight decay only on matrices (ndim >= 2)."""
  decay_mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)
  adamw = optax.adamw(learning_rate_schedule(optim, num_steps), b1=optim.b1, b2=optim.b2, eps=optim.eps,
                      weight_decay=optim.weight_decay, mask=decay_mask)
  return optax.chain(optax.clip_by_global_norm(optim.max_norm), adamw) if optim.max_norm else adamw


def update_ema(ema: Any, params: Any, decay: float) -> Any:
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)
