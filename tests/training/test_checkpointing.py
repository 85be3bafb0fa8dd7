"""Checkpoints damaged on disk: sha256 manifests, fallback to the newest intact step, one-line refusals."""
import errno
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax.io.errors import CheckpointError
from magnet_jax.training.checkpointing import MANIFEST, Checkpointer, abstract_like
from tests.helpers import tmpfs


def _state(step):
  return {'w': jnp.arange(20_000, dtype=jnp.float32) * step, 'b': jnp.full((7,), float(step))}


def _save(workdir, steps=(1, 2, 3)):
  checkpointer = Checkpointer(str(workdir), 1)
  for step in steps:
    checkpointer.save(step, _state(step), {'position': step})
  checkpointer.wait()
  checkpointer.close()


def _restore(workdir, step=None):
  target = _state(0)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  checkpointer = Checkpointer(str(workdir), 1)
  try:
    return checkpointer.restore(abstract_like(target, jax.tree.map(lambda _: device, target)), step)
  finally:
    checkpointer.close()


def _largest_file(folder):
  files = [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]
  return max(files, key=os.path.getsize)


def _truncate(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def _flip_400_bytes(path):
  with open(path, 'r+b') as f:
    data = bytearray(f.read())
    for i in range(100, 500):
      data[i] ^= 0xFF
    f.seek(0)
    f.write(data)


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('saved')
  _save(workdir)
  return workdir


def test_every_committed_step_has_a_manifest_and_restores(saved):
  for step in (1, 2, 3):
    assert os.path.exists(saved / 'checkpoints' / str(step) / MANIFEST)
  state, data = _restore(saved)
  assert data == {'position': 3}
  np.testing.assert_array_equal(state['w'], _state(3)['w'])


@pytest.mark.parametrize('damage', [_truncate, _flip_400_bytes])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, caplog):
  _save(tmp_path)
  latest = tmp_path / 'checkpoints' / '3'
  damage(_largest_file(latest / 'state'))
  with pytest.raises(CheckpointError, match=r'checkpoints/3 cannot be restored \(.* (bytes|sha256).*restore step 2'):
    _restore(tmp_path, 3)
  state, data = _restore(tmp_path)
  assert data == {'position': 2}
  np.testing.assert_array_equal(state['w'], _state(2)['w'])
  assert 'checkpoints/3 is damaged' in caplog.text
  assert os.path.isdir(str(latest) + '.damaged') and not latest.exists()
  _save(tmp_path, steps=(3,))  # the run can save that step again
  assert _restore(tmp_path)[1] == {'position': 3}


def test_every_checkpoint_damaged_is_one_error(tmp_path):
  _save(tmp_path, steps=(1,))
  _flip_400_bytes(_largest_file(tmp_path / 'checkpoints' / '1' / 'state'))
  with pytest.raises(CheckpointError, match='every checkpoint in .* is damaged'):
    _restore(tmp_path)


def test_a_full_disk_is_one_error_and_leaves_no_temporary_directory(tmp_path):
  with tmpfs(tmp_path / 'tmpfs', '48k') as folder:
    checkpointer = Checkpointer(str(folder), 1)
    with pytest.raises(OSError, match=f'no space left on device writing checkpoints to {folder}/checkpoints') as e:
      checkpointer.save(1, _state(1), {'position': 1})  # 80 kB
      checkpointer.wait()
    assert e.value.errno == errno.ENOSPC
    checkpointer.close()
    assert os.listdir(folder / 'checkpoints') == []
