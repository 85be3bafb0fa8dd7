"""Shared test helpers: loading configs/ files and small train configs, random LM inputs, restoring train
checkpoints."""
import importlib

import jax
import jax.numpy as jnp
import pytest

from magnet_jax import trainer
from magnet_jax.models.params import init_params


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


def lm_inputs(config):
  """Random params of `config`'s LM and a batch of two text conditions, the second with two padded positions:
  (params, cond [2, 5, Dt], cond_mask [2, 5])."""
  params = jax.jit(init_params, static_argnums=0)(config, jax.random.key(0))
  cond = jax.random.normal(jax.random.key(1), (2, 5, config.text_dim))
  cond_mask = jnp.array([[True] * 5, [True] * 3 + [False] * 2])
  return params, cond, cond_mask


@pytest.fixture
def tiny_config():
  return load_config


def restore_state(workdir, config, step: int | None = None):
  """(train state on the host, data state) of `workdir`'s checkpoint at `step` (default: latest), restored on
  this process's devices in `config`'s mesh and preset."""
  state, data_state = trainer.restore_state(config, str(workdir), step)
  return jax.device_get(state), data_state


@pytest.fixture(scope='session')
def tiny_pipeline_folder(tmp_path_factory):
  """An exported pipeline of random weights (configs/tiny.py's LM, T = 30 frames at 50 Hz; a 1.6 kHz codec; the
  packaged MiniLM) with short decoding schedules; loads without torch."""
  from magnet_jax.decoding import DecodingConfig
  from magnet_jax.generation import random_pipeline
  folder = tmp_path_factory.mktemp('tiny-pipeline')
  random_pipeline.export(folder, decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)))
  return folder
