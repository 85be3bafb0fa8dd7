"""Fixtures of the generation tests: the tiny random pipeline, and every window it decodes."""
import pytest

from magnet_jax.generation import pretrained
from tests.helpers import record_windows


@pytest.fixture(scope='module')
def pipeline(tiny_pipeline_folder):
  return pretrained.load(tiny_pipeline_folder)


@pytest.fixture
def recorded(pipeline, monkeypatch):
  """Every window the pipeline decodes: (codes in [B, K, W], known [B, W], codes out [B, K, W], conditions)."""
  return record_windows(pipeline, monkeypatch)
