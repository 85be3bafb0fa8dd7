"""Optimizer and train state: AdamW with warmup + cosine/inverse-sqrt/constant schedule, clipping, optional EMA."""
import math
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


def _finite(low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False):
  """A range check of one number (NaN and, for unbounded ranges, inf fail it) and its words for the error."""
  def check(value: float) -> bool:
    return (math.isfinite(value) and (value > low if low_open else value >= low)
            and (value < high if high_open else value <= high))
  words = f'{"(" if low_open else "["}{low:g}, {high:g}{")" if high_open else "]"}'
  return check, (f'> {low:g} and finite' if high == math.inf and low_open else
                 f'>= {low:g} and finite' if high == math.inf else f'in {words}')


# optim key -> (check, words): every optimizer setting a config may hold (the codec's has no EMA).
OPTIM_RANGES = {
    'lr': _finite(0.0, low_open=True),
    'b1': _finite(0.0, 1.0, high_open=True),
    'b2': _finite(0.0, 1.0, high_open=True),
    'eps': _finite(0.0, low_open=True),
    'weight_decay': _finite(0.0),
    'warmup_steps': _finite(0.0),
    'lr_min_ratio': _finite(0.0, 1.0),
    'max_norm': _finite(0.0),
    'ema_decay': _finite(0.0, 1.0, high_open=True),
}


def check_optim(optim: ml_collections.ConfigDict) -> None:
  """Checks the ranges of config.optim (after overrides); the first bad key is one error naming key and value.

  Raises:
    ValueError: e.g. 'optim.lr must be > 0 and finite, got -1.0'.
  """
  for key, (check, words) in OPTIM_RANGES.items():
    if key in optim and not check(float(optim[key])):
      raise ValueError(f'optim.{key} must be {words}, got {optim[key]}')
  if int(optim.warmup_steps) != optim.warmup_steps:
    raise ValueError(f'optim.warmup_steps must be a whole number of steps, got {optim.warmup_steps}')
  learning_rate_schedule(optim, 1)  # an unknown schedule name


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
