"""The cosine masking schedule, shared by training (mask rate of a drawn level) and decoding (mask probability of
each step), and the decoder's per-step tables.

Training draws u ~ U[0, 1] and masks a fraction `cosine_schedule(u)` of a level; decoding level k in n steps masks
`cosine_schedule(j / (n - 1))` of it at step j, evaluated by `mask_schedule` exactly as audiocraft's float32 torch
code rounds it, so that decoded tokens match the reference bit for bit.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.decoding.config import DecodingConfig


def cosine_schedule(t: jax.Array) -> jax.Array:
  """Mask rate for t in [0, 1]: cos(pi t / 2) (1 at t=0, 0 at t=1)."""
  return jnp.cos(t * math.pi * 0.5)


def torch_linspace01(n: int) -> np.ndarray:
  """torch.linspace(0, 1, n) in float32, bit for bit (float32 step, both halves evaluated in float64)."""
  if n == 1:
    return np.zeros(1, np.float32)
  step = np.float64(np.float32(1) / np.float32(n - 1))
  i = np.arange(n)
  return np.where(i < n // 2, step * i, 1.0 - step * (n - 1 - i)).astype(np.float32)


def mask_schedule(n: int) -> np.ndarray:
  """float32 [n]: mask_p = cos(linspace(0, 1, n) * pi * 0.5) as the reference computes it in float32.

  The argument is rounded as torch rounds it; the cosine is correctly rounded, where torch's vectorised cosine can
  be 1 ulp away: the resulting mask counts were checked equal for n <= 60 steps and up to 1500 frames.
  """
  arg = (torch_linspace01(n) * np.float32(math.pi)) * np.float32(0.5)
  return np.cos(arg.astype(np.float64)).astype(np.float32)


def step_tables(decoding: DecodingConfig) -> dict[str, np.ndarray]:
  """Per-step tables [sum(decoding_steps)] of the flattened schedule.

  Returns:
    'level' int32 level, 'first' bool (a level's first step), 'mask_p' float32 (the cosine schedule, see
    `num_masked`), 'cfg_coef' float32, 'temperature' float32 (already clamped at 0.01).
  """
  rows = []
  for level, n in enumerate(decoding.decoding_steps):
    for j, mask_p in enumerate(mask_schedule(n)):
      steps_left = n - 1 - j
      temp = decoding.temp * (steps_left / n) if decoding.anneal_temp else decoding.temp
      rows.append((level, j == 0, mask_p,
                   float(mask_p) * decoding.max_cfg_coef + (1 - float(mask_p)) * decoding.min_cfg_coef,
                   max(temp, 1e-2)))
  level, first, mask_p, cfg_coef, temperature = zip(*rows, strict=True)
  return {'level': np.array(level, np.int32), 'first': np.array(first), 'mask_p': np.array(mask_p, np.float32),
          'cfg_coef': np.array(cfg_coef, np.float32), 'temperature': np.array(temperature, np.float32)}


def num_masked(mask_p: jax.Array | float, num_to_generate: jax.Array | int) -> jax.Array:
  """Spans (or frames) re-masked at a step: max(int(mask_p * n), 1), the product in float32 as torch computes it.

  Args:
    mask_p: the step's float32 mask probability (`step_tables`).
    num_to_generate: spans ('nonoverlap') or frames not frozen by known frames; any int shape (e.g. [B]).
  """
  product = jnp.float32(mask_p) * jnp.asarray(num_to_generate).astype(jnp.float32)
  return jnp.maximum(product.astype(jnp.int32), 1)

