"""Fixtures shared by the tests (helpers that are plain functions live in tests/helpers.py)."""
import pytest

from tests.helpers import load_config


@pytest.fixture
def tiny_config():
  return load_config


@pytest.fixture(scope='session')
def tiny_pipeline_folder(tmp_path_factory):
  """An exported pipeline of random weights (configs/tiny.py's LM, T = 30 frames at 50 Hz; a 1.6 kHz codec; the
  packaged MiniLM) with short decoding schedules; loads without torch."""
  from magnet_jax.decoding import DecodingConfig
  from magnet_jax.generation import random_pipeline
  folder = tmp_path_factory.mktemp('tiny-pipeline')
  random_pipeline.export(folder, decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)))
  return folder
