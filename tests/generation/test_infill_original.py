"""An infill keeps the original audio outside its span, joined by short equal-power crossfades; the codec's
rendering stays available (original=False)."""
import numpy as np
import pytest

from magnet_jax.generation.pipeline import INFILL_FADE_S, keep_original


@pytest.fixture(scope='module')
def take(pipeline):
  rate = pipeline.sample_rate
  t = np.arange(int(0.6 * rate)) / rate
  return (0.3 * np.sin(2 * np.pi * 110 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), rate


def test_outside_the_span_is_the_original(pipeline, take):
  audio, rate = take
  out = pipeline.infill(audio, rate, ['drum fill'], 0.2, 0.4, seed=0)
  hop, fade = pipeline.codec_config.hop_length, round(INFILL_FADE_S * rate)
  first, last = int(0.2 * pipeline.frame_rate) * hop, int(np.ceil(0.4 * pipeline.frame_rate)) * hop
  source = pipeline.prepare_audio(audio, rate, 1)
  np.testing.assert_array_equal(out[..., :first - fade], source[..., :first - fade])
  np.testing.assert_array_equal(out[..., last + fade:], source[..., last + fade:])
  assert not np.allclose(out[..., first:last], source[..., first:last], atol=1e-3)
  rendered = pipeline.infill(audio, rate, ['drum fill'], 0.2, 0.4, seed=0, original=False)
  np.testing.assert_array_equal(rendered[..., first:last], out[..., first:last])  # the same regenerated span
  assert not np.allclose(rendered[..., :first - fade], source[..., :first - fade], atol=1e-3)


def test_the_crossfade_keeps_equal_power():
  rng = np.random.default_rng(0)
  original, rendered = rng.standard_normal((2, 1, 1, 200_000)).astype(np.float32)
  out = keep_original(original, rendered, 100_000, 150_000, 20_000)
  np.testing.assert_array_equal(out[..., :80_000], original[..., :80_000])
  np.testing.assert_array_equal(out[..., 100_000:150_000], rendered[..., 100_000:150_000])
  for edge in (slice(80_000, 100_000), slice(150_000, 170_000)):  # uncorrelated signals: the level is kept
    assert abs(np.mean(out[..., edge] ** 2) - 1.0) < 0.03
  assert abs(out[0, 0, 99_999] - rendered[0, 0, 99_999]) < 0.01 * abs(rendered[0, 0, 99_999]) + 1e-3
