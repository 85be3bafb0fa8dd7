"""Training: overfit to near-zero loss, exact resume, NaN stop, train.py flags and errors."""
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from magnet_jax.training import trainer
from tests.helpers import load_config, restore_state, tmpfs


def _tiny(**overrides):
  return load_config('tiny', **{'train.log_every': 10, 'train.checkpoint_every': 10, **overrides})


def test_overfits_fixed_synthetic_set_to_near_zero(tmp_path):
  summary = trainer.train(_tiny(**{'train.num_steps': 400, 'train.cfg_dropout': 0.0}), str(tmp_path))
  rows = [r for r in map(json.loads, open(tmp_path / 'metrics.jsonl')) if 'loss' in r]  # training rows
  assert rows[0]['loss'] > 2.5  # ~ log(32) at the start
  assert summary['loss'] < 0.1, summary
  assert summary['accuracy'] > 0.97
  assert {f'loss_level_{k}' for k in range(4)} <= set(summary)


def _rows(workdir):
  """metrics.jsonl's training rows without the timings (which differ between runs); validation rows (valid_*, at
  their own steps) are checked by tests/training/test_finetune.py."""
  rows = [r for r in map(json.loads, open(os.path.join(workdir, 'metrics.jsonl'))) if 'loss' in r]
  return [{k: v for k, v in row.items() if k not in ('steps_per_s', 'tokens_per_s')} for row in rows]


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
  # metrics.jsonl: each log point once, in order, with its window; the per-level losses do not restart.
  rows = _rows(tmp_path / 'straight')
  assert [r['step'] for r in rows] == [10, 20, 30, 40]
  assert [r['window'] for r in rows] == [[1, 10], [11, 20], [21, 30], [31, 40]]
  assert _rows(tmp_path / 'resumed') == rows
  # a kill after step 40 was logged but before checkpoints 30 and 40 were committed: the resume from 20 drops the
  # rows past it and logs them again, once.
  for step in ('30', '40'):
    shutil.rmtree(tmp_path / 'resumed' / 'checkpoints' / step)
  trainer.train(config, str(tmp_path / 'resumed'), resume=True)
  assert _rows(tmp_path / 'resumed') == rows


def test_resume_refuses_changes_the_checkpoint_depends_on(tmp_path):
  trainer.train(_tiny(**{'train.num_steps': 10}), str(tmp_path))
  stored = json.load(open(tmp_path / 'config.json'))
  assert stored['train']['batch_size'] == 8 and stored['optim']['lr'] == 3e-3
  for key, value, message in [('train.batch_size', 16, r'train.batch_size \(the run has 8, this command 16\)'),
                              ('optim.lr', 1e-3, r'optim.lr \(the run has 0.003, this command 0.001\)'),
                              ('model.num_layers', 3, 'model.num_layers'), ('train.seed', 1, 'train.seed'),
                              ('data.num_examples', 4, 'data.num_examples')]:
    with pytest.raises(ValueError, match=r'--resume cannot change ' + message):
      trainer.train(_tiny(**{'train.num_steps': 20, key: value}), str(tmp_path), resume=True)
  summary = trainer.train(_tiny(**{'train.num_steps': 20, 'train.log_every': 5}), str(tmp_path), resume=True)
  assert summary['step'] == 20
  assert json.load(open(tmp_path / 'config.json'))['train']['num_steps'] == 20


@pytest.mark.parametrize('key, value, message', [
    ('optim.lr', -1.0, 'optim.lr must be > 0 and finite, got -1.0'),
    ('optim.lr', float('nan'), 'optim.lr must be > 0 and finite, got nan'),
    ('optim.lr', float('inf'), 'optim.lr must be > 0 and finite, got inf'),
    ('optim.b1', 1.0, r'optim.b1 must be in \[0, 1\), got 1.0'),
    ('optim.b2', -0.5, r'optim.b2 must be in \[0, 1\), got -0.5'),
    ('optim.eps', 0.0, 'optim.eps must be > 0'),
    ('optim.weight_decay', -0.1, 'optim.weight_decay must be >= 0 and finite, got -0.1'),
    ('optim.warmup_steps', -1, 'optim.warmup_steps must be >= 0'),
    ('optim.lr_min_ratio', 2.0, r'optim.lr_min_ratio must be in \[0, 1\]'),
    ('optim.max_norm', -1.0, 'optim.max_norm must be >= 0'),
    ('optim.ema_decay', 1.0, r'optim.ema_decay must be in \[0, 1\), got 1.0'),
    ('optim.schedule', 'linear', 'optim.schedule'),
    ('train.max_checkpoints', 0, 'train.max_checkpoints must be >= 1'),
    ('data.word_dropout', 1.5, r'data.word_dropout must be a probability in \[0, 1\], got 1.5'),
])
def test_validate_refuses_out_of_range_settings(key, value, message):
  with pytest.raises(ValueError, match=message):
    trainer.validate(_tiny(**{key: value}))


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
  assert [r['step'] for r in rows if 'loss' in r] == [1, 2, 3]
  assert 'steps/s' in ok.stderr and 'tokens/s' in ok.stderr

  for flag, message in [('--config.optim.lrr=1', 'Did you mean "lr"'),
                        ('--config.model.dim=66', 'not a multiple of model.num_heads'),
                        ('--config.sharding.mesh.data=3', 'needs 3 devices'),
                        ('--config.data.source=nope', 'data.source')]:
    bad = _train_py(flag, workdir=tmp_path / 'bad')
    assert bad.returncode != 0
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith('train.py: error:') and message in last, bad.stderr[-1500:]


def test_train_py_bad_places_and_config_files_are_one_line(tmp_path):
  (tmp_path / 'a-file').write_text('')
  def last_line(*args):
    bad = subprocess.run([sys.executable, 'train.py', *args], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1
    return bad.stderr.strip().splitlines()[-1]
  assert last_line('--config=configs/nope.py', f'--workdir={tmp_path}/run') == (
      "train.py: error: cannot load --config: [Errno 2] No such file or directory: 'configs/nope.py'")
  assert last_line('--config=configs/tiny.py', f'--workdir={tmp_path}/a-file') == (
      f'train.py: error: workdir {tmp_path}/a-file is not a writable folder (a file)')
  with tmpfs(tmp_path / 'read-only', '64k', read_only=True) as folder:
    assert last_line('--config=configs/tiny.py', f'--workdir={folder}') == (
        f'train.py: error: workdir {folder} is not a writable folder (Read-only file system)')


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
