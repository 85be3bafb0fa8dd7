"""Shared test helpers: loading configs/ files and small train configs."""
import importlib

import pytest


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
