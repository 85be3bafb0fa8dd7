"""Validation: per-level masked cross-entropy and accuracy on a fixed set, with fixed masks at fixed rates.

The set is the first `eval.num_examples` records of `eval.split` (tfds; for `data.source=synthetic` a fixed
synthetic set of another seed). For every level k and every rate r of `eval.mask_rates`, example i's span mask
is drawn from a key fixed by (eval.seed, k, r, i) alone, levels < k are clean and levels > k fully masked, as in
training, with the text condition kept (no CFG dropout). Sums are accumulated in float64 on the host from float32
per-batch sums, so the numbers are the same across runs, restarts, batch splits and sharding layouts (to float32
rounding of the per-batch sums).

Metrics: 'valid_loss' (mean over levels of each level's cross-entropy), 'valid_accuracy', and per level
'valid_loss_level_k' / 'valid_accuracy_level_k' (masked frames of all rates pooled).
"""
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from magnet_jax.data.loader import read_examples
from magnet_jax.data.synthetic import make_examples
from magnet_jax.models import MagnetLM
from magnet_jax.models.config import MagnetConfig
from magnet_jax.parallel.sharding import batch_sharding, replicated
from magnet_jax.training.loss import masked_inputs
from magnet_jax.training.masking import span_mask


def validation_set(config: ml_collections.ConfigDict, model: MagnetConfig) -> dict[str, np.ndarray]:
  """The fixed examples: 'codes' [E, K, T], 'cond' [E, S, Dt], 'cond_mask' [E, S], 'padding_mask' [E, T]."""
  num = int(config.eval.num_examples)
  if config.data.source == 'synthetic':
    data = config.data
    return make_examples(num, model.n_q, model.card, data.length or model.sequence_length, data.text_len,
                         model.text_dim, seed=int(config.train.seed) + 1)
  return read_examples(config, model, config.eval.split, num)


def fixed_masks(model: MagnetConfig, rates, num_examples: int, length: int, seed: int) -> np.ndarray:
  """bool [K, R, E, T]: example i's span mask for level k at rate r, from a key of (seed, k, r, i) only."""
  def one(level, rate_index, example):
    key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), level), rate_index),
                             example)
    return span_mask(key, jnp.asarray(rates)[rate_index][None], length, model.span_len)[0]
  grid = jnp.meshgrid(jnp.arange(model.n_q), jnp.arange(len(rates)), jnp.arange(num_examples), indexing='ij')
  flat = jax.jit(jax.vmap(one))(*(g.reshape(-1) for g in grid))
  return np.asarray(flat).reshape(model.n_q, len(rates), num_examples, length)


class Validator:
  """Evaluates params (a tree in `param_shardings`) on the fixed validation set of `config`."""

  def __init__(self, config: ml_collections.ConfigDict, model: MagnetConfig, mesh, rules, param_shardings,
               examples: Mapping[str, np.ndarray] | None = None):
    ev = config.eval
    self.model, self.batch_size = model, int(ev.batch_size)
    if self.batch_size % mesh.shape['data']:
      raise ValueError(f'eval.batch_size={self.batch_size} is not divisible by the mesh data axis '
                       f'({mesh.shape["data"]})')
    examples = dict(validation_set(config, model) if examples is None else examples)
    num = len(examples['codes'])
    pad = -num % self.batch_size  # padded rows have padding_mask False: they weigh nothing
    self.examples = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in examples.items()}
    self.examples.setdefault('padding_mask', np.ones(self.examples['codes'].shape[::2], bool))
    self.examples['padding_mask'][num:] = False
    self.masks = fixed_masks(model, tuple(float(r) for r in ev.mask_rates), num + pad,
                             self.examples['codes'].shape[-1], int(ev.seed))
    lm = MagnetLM(model)

    def sums(params, batch, level_mask, level):
      inputs = masked_inputs(batch['codes'], level, level_mask, model.mask_id)
      logits = lm.apply({'params': params}, inputs, batch['cond'], batch['cond_mask'], level,
                        method=MagnetLM.level_logits).astype(jnp.float32)
      targets = jnp.take(batch['codes'], level, axis=1)
      weights = jnp.logical_and(level_mask, batch['padding_mask']).astype(jnp.float32)
      ce = -jnp.take_along_axis(jax.nn.log_softmax(logits, -1), targets[..., None], -1)[..., 0]
      correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
      return jnp.stack([(ce * weights).sum(), (correct * weights).sum(), weights.sum()])

    data = batch_sharding(mesh)
    jitted = jax.jit(sums, in_shardings=(param_shardings, data, data, replicated(mesh)),
                     out_shardings=replicated(mesh))

    def run(params, batch, level_mask, level):
      with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        return jitted(params, batch, level_mask, level)
    self._sums = run

  def __call__(self, params) -> dict[str, float]:
    totals = np.zeros((self.model.n_q, 3), np.float64)
    num = len(self.examples['codes'])
    for level in range(self.model.n_q):
      for rate in range(self.masks.shape[1]):
        for start in range(0, num, self.batch_size):
          rows = slice(start, start + self.batch_size)
          batch = {k: v[rows] for k, v in self.examples.items()}
          totals[level] += np.asarray(jax.device_get(
              self._sums(params, batch, self.masks[level, rate, rows], np.int32(level))), np.float64)
    count = np.maximum(totals[:, 2], 1.0)
    loss, accuracy = totals[:, 0] / count, totals[:, 1] / count
    metrics = {'valid_loss': float(loss.mean()), 'valid_accuracy': float(accuracy.mean())}
    metrics.update({f'valid_loss_level_{k}': float(v) for k, v in enumerate(loss)})
    metrics.update({f'valid_accuracy_level_{k}': float(v) for k, v in enumerate(accuracy)})
    return metrics
