"""Training: overfit to near-zero loss, exact resume, NaN stop, train.py flags and errors."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from magnet_jax.training import trainer
from tests.helpers import load_config, restore_state


def _tiny(**overrides):
  return load_config('tiny', **{'train.log_every': 10, 'train.checkpoint_every': 10, **overrides})


def test_overfits_fixed_synthetic_set_to_near_zero(tmp_path):
  summary = trainer.train(_tiny(**{'train.num_steps': 400, 'train.cfg_dropout': 0.0}), str(tmp_path))
  rows = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert rows[0]['loss'] > 2.5  # ~ log(32) at the start
  assert summary['loss'] < 0.1, summary
  assert summary['accuracy'] > 0.97
  assert {f'loss_level_{k}' for k in range(4)} <= set(summary)


def test_resume_is_exact(tmp_path):
  config = _tiny(**{'train.num_steps': 40})
  trainer.train(config, str(tmp_path / 'straight'))
  trainer.train(_tiny(**{'train.num_steps': 20}), str(tmp_path / 'resumed'))
  with pytest.raises(FileExistsError, match='--resume'):
    trainer.train(config, str(tmp_path / 'resumed'))
  trainer.train(config, str(tmp_path / 'resumed'), resume=True)
  straight, straight_data = restore_state(tmp_path / 'straight', config)
  resumed, resumed_data = restore_state(tmp_path / 'resumed', config)
  assert int(straight.step) == int(resumed.step) == 40 and straight_data == resumed_data
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
    np.testing.assert_array_equal(a, b)


class _PoisonedFrom:
  """Wraps a data source; from batch number `first` (1-based) on, the text states are NaN."""

  def __init__(self, source, first):
    self._source, self._first, self._count = source, first, 0

  def __iter__(self):
    return self

  def __next__(self):
    batch = next(self._source)
    self._count += 1
    if self._count >= self._first:
      batch['cond'] = np.full_like(batch['cond'], np.nan)
    return batch

  def get_state(self):
    return self._source.get_state()

  def set_state(self, state):
    self._source.set_state(state)


def test_nan_stops_with_the_step_and_no_checkpoint(tmp_path, monkeypatch):
  real = trainer.make_source
  monkeypatch.setattr(trainer, 'make_source', lambda *args: _PoisonedFrom(real(*args), first=4))
  with pytest.raises(FloatingPointError, match='diverged at step 4'):
    trainer.train(_tiny(**{'train.num_steps': 30, 'train.cfg_dropout': 0.0}), str(tmp_path))
  assert not os.path.exists(tmp_path / 'checkpoints' / '10')


def _train_py(*args, workdir):
  return subprocess.run([sys.executable, 'train.py', '--config=configs/tiny.py', f'--workdir={workdir}', *args],
                        capture_output=True, text=True, timeout=600)


def test_train_py_overrides_and_one_line_errors(tmp_path):
  ok = _train_py('--config.train.num_steps=3', '--config.train.log_every=1', '--config.optim.lr=1e-3',
                 workdir=tmp_path / 'run')
  assert ok.returncode == 0, ok.stderr[-2000:]
  rows = [json.loads(line) for line in open(tmp_path / 'run' / 'metrics.jsonl')]
  assert [r['step'] for r in rows] == [1, 2, 3]
  assert 'steps/s' in ok.stderr and 'tokens/s' in ok.stderr

  for flag, message in [('--config.optim.lrr=1', 'Did you mean "lr"'),
                        ('--config.model.dim=66', 'not a multiple of model.num_heads'),
                        ('--config.sharding.mesh.data=3', 'needs 3 devices'),
                        ('--config.data.source=nope', 'data.source')]:
    bad = _train_py(flag, workdir=tmp_path / 'bad')
    assert bad.returncode != 0
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith('train.py: error:') and message in last, bad.stderr[-1500:]


# (dim, layers, heads, text_dim, segment seconds) of each trainable config: the released sizes (README).
SIZES = {'tiny': (64, 2, 4, 16, 0.6), 'small': (1024, 24, 16, 768, 10.0), 'medium': (1536, 48, 24, 768, 10.0),
         'small_30s': (1024, 24, 16, 768, 30.0), 'medium_30s': (1536, 48, 24, 768, 30.0),
         'audio_small': (1024, 24, 16, 1024, 10.0), 'audio_medium': (1536, 48, 24, 1024, 10.0)}


@pytest.mark.parametrize('name', sorted(SIZES))
def test_every_trainable_config_validates_to_its_size(name):
  model = trainer.validate(load_config(name))
  assert (model.dim, model.num_layers, model.num_heads, model.text_dim, model.segment_duration) == SIZES[name]
  codebooks = (4, 32) if name == 'tiny' else (4, 2048)
  assert (model.n_q, model.card, model.span_len, model.subcodes_context) == (*codebooks, 3, 5)


@pytest.mark.parametrize('name', ['hybrid_small', 'hybrid_medium'])
def test_hybrid_configs_are_refused_for_training(name):
  with pytest.raises(ValueError, match='Hybrid-MAGNeT'):
    trainer.validate(load_config(name))
