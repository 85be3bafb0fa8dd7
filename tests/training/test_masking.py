"""Cosine schedule, the mask-rate LUT and span masks (audiocraft MagnetSolver semantics)."""
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax.decoding.mask_schedule import cosine_schedule
from magnet_jax.training.masking import mask_rate_to_num_spans, span_mask, spans_from_starts


def test_cosine_schedule_endpoints_and_shape():
  t = jnp.linspace(0, 1, 11)
  np.testing.assert_allclose(cosine_schedule(t), np.cos(np.linspace(0, 1, 11) * math.pi / 2), atol=1e-6)
  assert float(cosine_schedule(0.0)) == 1.0 and abs(float(cosine_schedule(1.0))) < 1e-6


@pytest.mark.parametrize('length,span_len', [(500, 3), (1500, 3), (30, 3), (100, 5)])
def test_lut_equals_audiocraft(length, span_len):
  torch = pytest.importorskip('torch')  # noqa: F841
  from reference.stubs import import_audiocraft
  import_audiocraft()
  from audiocraft.solvers.magnet import MagnetSolver
  fake = types.SimpleNamespace(cfg=types.SimpleNamespace(masking=types.SimpleNamespace(span_len=span_len)))
  expected = MagnetSolver._calc_mean_maskrate_to_u_LUT(fake, length)
  np.testing.assert_array_equal(mask_rate_to_num_spans(length, span_len), expected)


@pytest.mark.parametrize('rate', [0.05, 0.2, 0.5, 0.8, 0.97])
def test_span_mask_mean_rate_within_one_percent(rate):
  masks = span_mask(jax.random.key(1), jnp.full((4000,), rate), 500, 3)
  assert masks.shape == (4000, 500) and masks.dtype == jnp.bool_
  assert abs(float(masks.mean()) - rate) < 0.01, float(masks.mean())


def test_span_mask_runs_are_at_least_span_len():
  masks = np.asarray(span_mask(jax.random.key(2), jnp.full((200,), 0.3), 120, 3))
  for row in masks:
    padded = np.concatenate([[0], row.astype(int), [0]])
    edges = np.flatnonzero(np.diff(padded))
    runs = edges[1::2] - edges[::2]
    # a run touching the end may be cut by the sequence end; interior runs are whole spans
    interior = runs[:-1] if row[-1] else runs
    assert (interior >= 3).all()


def test_token_mask_count_is_exact_for_span_len_one():
  rates = jnp.array([0.0, 0.1, 0.5, 1.0])
  masks = span_mask(jax.random.key(3), rates, 50, 1)
  np.testing.assert_array_equal(masks.sum(-1), [1, 5, 25, 50])  # round(T p), at least 1


def test_spans_from_starts():
  starts = jnp.array([[1, 0, 0, 0, 1, 0, 0, 0, 0, 1]], bool)
  np.testing.assert_array_equal(spans_from_starts(starts, 3), [[1, 1, 1, 0, 1, 1, 1, 0, 0, 1]])


def test_span_mask_is_deterministic_under_a_seed():
  a = span_mask(jax.random.key(7), jnp.full((8,), 0.4), 60, 3)
  b = span_mask(jax.random.key(7), jnp.full((8,), 0.4), 60, 3)
  c = span_mask(jax.random.key(8), jnp.full((8,), 0.4), 60, 3)
  assert (a == b).all() and not (a == c).all()
