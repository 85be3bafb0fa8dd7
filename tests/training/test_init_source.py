"""`init.source` = another run's workdir (issue 26): its config.json's architecture is checked like an exported or
released source's, and a damaged checkpoint is one line naming the damaged file (from its sha256 manifest)."""
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from magnet_jax.io.errors import CheckpointError
from magnet_jax.models.config import MagnetConfig
from magnet_jax.training import checkpointing
from magnet_jax.training.init import load_init_params

MODEL = MagnetConfig(dim=16, num_heads=2, num_layers=1, card=8, n_q=2, text_dim=8)


def _init(workdir) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({'source': str(workdir), 'step': -1, 'reinit': ()})


def test_a_workdir_of_another_architecture_is_refused(tmp_path):
  (tmp_path / 'checkpoints').mkdir()
  (tmp_path / 'config.json').write_text(json.dumps({'model': {**dataclasses.asdict(MODEL), 'max_period': 5000}}))
  with pytest.raises(ValueError, match=f'init.source {tmp_path}: model.max_period=10000.0 but the source has '
                                       'max_period=5000'):
    load_init_params(_init(tmp_path), MODEL, None, None)
  (tmp_path / 'config.json').write_text('{"model": "tiny"}')
  with pytest.raises(CheckpointError, match='config.json: not a run config'):
    load_init_params(_init(tmp_path), MODEL, None, None)


def test_a_damaged_workdir_checkpoint_is_one_line_naming_the_file(tmp_path):
  params = {'w': np.arange(1024, dtype=np.float32)}
  directory = tmp_path / 'checkpoints'
  with ocp.CheckpointManager(directory) as manager:
    manager.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave({'params': params})))
    manager.wait_until_finished()
  checkpointing.write_manifest(str(directory / '1'))
  data = max((os.path.join(root, name) for root, _, names in os.walk(directory / '1' / 'state') for name in names
              if name != checkpointing.MANIFEST), key=os.path.getsize)
  with open(data, 'r+b') as f:  # flip bytes in the largest data file
    f.seek(os.path.getsize(data) // 2)
    f.write(b'\xff' * 8)
  fresh = {'w': jnp.zeros(1024)}
  shardings = {'w': jax.sharding.SingleDeviceSharding(jax.devices()[0])}
  with pytest.raises(CheckpointError) as error:
    load_init_params(_init(tmp_path), MODEL, fresh, shardings)
  message = str(error.value)
  assert message.startswith(f'init.source {tmp_path}: the checkpoint at step 1 is damaged (state/')
  assert 'does not match its sha256' in message and '\n' not in message
