"""Shared test helpers: loading configs/ files and small train configs, restoring train checkpoints."""
import importlib

import jax
import pytest

from magnet_jax import trainer
from magnet_jax.checkpointing import Checkpointer, abstract_like
from magnet_jax.optim import make_optimizer
from magnet_jax.sharding import make_mesh, rules_for


def load_config(name: str, **overrides):
  """configs/<name>.py's get_config() with dotted overrides, e.g. load_config('tiny', **{'train.num_steps': 5})."""
  config = importlib.import_module(f'configs.{name}').get_config()
  for dotted, value in overrides.items():
    *parents, leaf = dotted.split('.')
    section = config
    for p in parents:
      section = section[p]
    section[leaf] = value
  return config


@pytest.fixture
def tiny_config():
  return load_config


def restore_state(workdir, config, step: int | None = None):
  """(train state on the host, data state) of `workdir`'s checkpoint at `step` (default: latest), restored on
  this process's devices in `config`'s mesh and preset."""
  model = trainer.validate(config)
  mesh = make_mesh(config.sharding.mesh)
  optimizer = make_optimizer(config.optim, config.train.num_steps)
  shardings = trainer._state_shardings(model, optimizer, mesh, rules_for(config.sharding.preset), ema=False)
  make = lambda rng: trainer.create_state(model, optimizer, rng, shardings, ema=False)
  abstract = abstract_like(jax.eval_shape(make, jax.random.key(0)), shardings)
  checkpointer = Checkpointer(str(workdir), 10)
  state, data_state = checkpointer.restore(abstract, step)
  checkpointer.close()
  return jax.device_get(state), data_state
