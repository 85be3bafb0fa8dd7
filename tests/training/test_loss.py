"""The masked-span objective: inputs per level, loss only on the chosen level's masked frames, CFG dropout."""
import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.models.config import MagnetConfig
from magnet_jax.training.loss import cfg_dropout, draw_level_and_mask, masked_inputs, masked_level_loss

CONFIG = MagnetConfig(dim=32, num_heads=2, num_layers=1, card=16, text_dim=8)


def test_masked_inputs_levels():
  codes = jnp.arange(2 * 4 * 6).reshape(2, 4, 6) % 16
  level_mask = jnp.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], bool)
  out = np.asarray(masked_inputs(codes, jnp.int32(1), level_mask, 16))
  np.testing.assert_array_equal(out[:, 0], codes[:, 0])                           # below: clean
  np.testing.assert_array_equal(out[:, 1], np.where(level_mask, 16, codes[:, 1]))  # level: spans masked
  assert (out[:, 2:] == 16).all()                                                 # above: fully masked


@jax.jit
def _loss(batch, rng):
  """Loss with a fake model whose logits depend only on the targets table, to isolate the objective."""
  table = jax.random.normal(jax.random.key(0), (CONFIG.n_q, 8, CONFIG.card))
  fake = lambda inputs, cond, cond_mask, level: jnp.broadcast_to(table[level], (inputs.shape[0],) + table.shape[1:])
  return masked_level_loss(fake, batch, rng, CONFIG, cfg_dropout_p=0.0)


def test_loss_counts_only_masked_frames_of_the_drawn_level():
  rng = jax.random.key(3)
  codes = np.asarray(jax.random.randint(jax.random.key(1), (4, CONFIG.n_q, 8), 0, CONFIG.card))
  batch = {'codes': codes, 'cond': np.zeros((4, 2, 8), np.float32), 'cond_mask': np.ones((4, 2), bool)}
  level, level_mask = draw_level_and_mask(jax.random.split(rng)[0], CONFIG, 4, 8)
  level, level_mask = int(level), np.asarray(level_mask)
  loss, metrics = _loss(batch, rng)
  assert int(metrics['level']) == level and float(metrics['masked_frames']) == level_mask.sum()

  unseen = codes.copy()
  unseen[:, level][~level_mask] = (unseen[:, level][~level_mask] + 1) % CONFIG.card  # unmasked frames of level
  for other in set(range(CONFIG.n_q)) - {level}:
    unseen[:, other] = (unseen[:, other] + 1) % CONFIG.card                          # every other level
  np.testing.assert_allclose(_loss(dict(batch, codes=unseen), rng)[0], loss, rtol=1e-6)

  seen = codes.copy()
  seen[:, level][level_mask] = (seen[:, level][level_mask] + 1) % CONFIG.card
  assert abs(float(_loss(dict(batch, codes=seen), rng)[0]) - float(loss)) > 1e-3


def test_padding_frames_are_excluded():
  codes = np.zeros((2, CONFIG.n_q, 8), np.int32)
  batch = {'codes': codes, 'cond': np.zeros((2, 2, 8), np.float32), 'cond_mask': np.ones((2, 2), bool),
           'padding_mask': np.zeros((2, 8), bool)}
  loss, metrics = _loss(batch, jax.random.key(0))
  assert float(metrics['masked_frames']) == 0 and float(loss) == 0.0


def test_cfg_dropout_nulls_the_whole_batch():
  mask = jnp.ones((16, 5), bool)
  outcomes = [bool(cfg_dropout(jax.random.key(i), mask, 0.3).any()) for i in range(400)]
  kept = [bool(cfg_dropout(jax.random.key(i), mask, 0.3).all()) for i in range(400)]
  assert outcomes == kept  # all rows dropped together or none
  assert abs(1 - np.mean(outcomes) - 0.3) < 0.07
