"""MAGNeT's training objective: masked-span cross-entropy on one RVQ level.

For a level k (one per step, as audiocraft's MagnetSolver): levels < k are given clean, level k is masked by
spans at a rate from the cosine schedule, levels > k are fully masked; the loss is the cross-entropy of level k's
logits on its masked (and non-padded) frames only.
"""
from collections.abc import Callable

import jax
import jax.numpy as jnp

from magnet_jax.decoding.mask_schedule import cosine_schedule
from magnet_jax.models.config import MagnetConfig
from magnet_jax.training.masking import span_mask

LevelLogitsFn = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


def masked_inputs(codes: jax.Array, level: jax.Array, level_mask: jax.Array, mask_id: int) -> jax.Array:
  """codes [B, K, T], level (scalar), level_mask bool [B, T] -> model inputs [B, K, T].

  Level `level` is replaced by mask_id where level_mask; every level above it is mask_id everywhere.
  """
  k = jnp.arange(codes.shape[1])[None, :, None]
  masked = jnp.logical_or(k > level, jnp.logical_and(k == level, level_mask[:, None, :]))
  return jnp.where(masked, mask_id, codes)


def draw_level_and_mask(rng: jax.Array, config: MagnetConfig, batch: int, length: int):
  """One level for the batch (uniform over K) and a span mask [B, T] per example at rate cos(pi u / 2)."""
  level_rng, time_rng, mask_rng = jax.random.split(rng, 3)
  level = jax.random.randint(level_rng, (), 0, config.n_q)
  rate = cosine_schedule(jax.random.uniform(time_rng, (batch,)))
  return level, span_mask(mask_rng, rate, length, config.span_len)


def cfg_dropout(rng: jax.Array, cond_mask: jax.Array, p: float) -> jax.Array:
  """Classifier-free guidance dropout: with probability p the whole batch's condition is nulled (one coin flip
  per batch, as audiocraft's ClassifierFreeGuidanceDropout) -> cond_mask all False."""
  drop = jax.random.bernoulli(rng, p)
  return jnp.logical_and(cond_mask, jnp.logical_not(drop))


def masked_level_loss(level_logits: LevelLogitsFn, batch: dict, rng: jax.Array, config: MagnetConfig,
                      cfg_dropout_p: float) -> tuple[jax.Array, dict]:
  """Cross-entropy of the drawn level on its masked frames.

  Args:
    level_logits: (inputs [B, K, T], cond [B, S, Dt], cond_mask [B, S], level) -> logits [B, T, V].
    batch: 'codes' int [B, K, T], 'cond' [B, S, Dt], 'cond_mask' bool [B, S], optional 'padding_mask' bool [B, T].
    rng: randomness for level, mask and CFG dropout.
    config: the LM config (n_q, span_len, mask id).
    cfg_dropout_p: probability of nulling the condition for the whole batch.

  Returns:
    (mean cross-entropy over masked frames, metrics with 'loss', 'level', 'masked_frames', 'accuracy').
  """
  codes = batch['codes']
  b, _, t = codes.shape
  mask_rng, drop_rng = jax.random.split(rng)
  level, level_mask = draw_level_and_mask(mask_rng, config, b, t)
  cond_mask = cfg_dropout(drop_rng, batch['cond_mask'], cfg_dropout_p)
  logits = level_logits(masked_inputs(codes, level, level_mask, config.mask_id), batch['cond'], cond_mask, level)
  targets = jnp.take(codes, level, axis=1)
  weights = level_mask
  if 'padding_mask' in batch:
    weights = jnp.logical_and(weights, batch['padding_mask'])
  weights = weights.astype(jnp.float32)
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  ce = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  count = jnp.maximum(weights.sum(), 1.0)
  loss = (ce * weights).sum() / count
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return loss, {'loss': loss, 'level': level, 'masked_frames': weights.sum(),
                'accuracy': (correct * weights).sum() / count}
