"""Generation with given frames: infilling, outpainting, continuation, seamless loops and windowed long form, all
through the one-program decoder with a known-frames mask; non-finite logits; the accelerator default dtype.

Pipeline: random weights, T = 30-frame window (`tiny_pipeline_folder`), vocabulary 32 (mask id 32), hop 32.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax import decoding
from magnet_jax.generation import pretrained, windows
from magnet_jax.models.params import init_params

CARD = 32


def _codes(frames: int, batch: int = 1, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, CARD, (batch, 4, frames)).astype(np.int32)


def test_plan_sweeps_long_runs_and_centres_short_ones():
  assert windows.plan(np.zeros(60, bool), 30, 15) == [0, 15, 30]  # long form: 3 windows, 15 frames shared
  assert windows.plan(np.zeros(70, bool), 30, 15) == [0, 15, 30, 40]  # the last one ends at the end
  assert windows.plan(np.arange(100) < 40, 30, 15) == [25, 40, 55, 70]  # continuation keeps 15 prompt frames
  span = np.ones(100, bool)
  span[50:56] = False
  assert windows.plan(span, 30, 15) == [38]  # infill: centred, 12 known frames on either side
  assert windows.plan(np.arange(100) >= 60, 30, 15, reverse=True) == [45, 30, 15, 0]  # outpaint left
  assert windows.plan(np.ones(10, bool), 10, 0) == []
  with pytest.raises(ValueError, match='overlap'):
    windows.plan(np.zeros(60, bool), 30, 30)


def test_stream_cuts_tile_the_piece_from_mid_overlap_to_mid_overlap():
  assert windows.stream_cuts([0, 15, 30], 30, 60, prefix=0) == (0, [(0, 22), (22, 37), (37, 60)])
  first, cuts = windows.stream_cuts([25, 40, 55, 70], 30, 100, prefix=40)
  assert first == 32 and cuts == [(32, 47), (47, 62), (62, 77), (77, 100)]
  assert all(start <= a and b <= start + 30 for start, (a, b) in zip([25, 40, 55, 70], cuts, strict=True))


def test_infill_keeps_every_known_frame_and_regenerates_the_span(pipeline, recorded):
  codes = _codes(70, batch=2)
  known = np.ones(70, bool)
  known[31:40] = False
  out = pipeline.fill_tokens(['calm piano', 'fast drums'], codes, known, seed=1)
  np.testing.assert_array_equal(out[..., known], codes[..., known])  # bit for bit, every level
  assert 0 <= out.min() and out.max() < CARD
  assert np.any(out[..., ~known] != codes[..., ~known])
  [(window_in, window_known, _, _)] = recorded  # one window of 30 frames centred on the 9-frame span: [21, 51)
  np.testing.assert_array_equal(window_known[0], ~((np.arange(30) >= 10) & (np.arange(30) < 19)))
  np.testing.assert_array_equal(window_in[:, :, :10], codes[:, :, 21:31])

  audio = pipeline.decode(codes[..., :40])[..., :1250]
  filled = pipeline.infill(audio, pipeline.sample_rate, ['calm piano', 'fast drums'], 0.3, 0.5, seed=1)
  assert filled.shape == (2, 1, 1250) and np.isfinite(filled).all()
  with pytest.raises(ValueError, match='not inside the audio'):
    pipeline.infill(audio, pipeline.sample_rate, ['a', 'b'], 0.5, 0.9)


def test_each_example_draws_from_its_own_seed(pipeline):
  same = pipeline.generate_tokens(['calm piano', 'calm piano'], duration=0.6, seed=[5, 5])
  np.testing.assert_array_equal(same[0], same[1])
  other = pipeline.generate_tokens(['calm piano', 'calm piano'], duration=0.6, seed=5)  # seeds 5 and 6
  np.testing.assert_array_equal(other[0], same[0])
  assert np.any(other[1] != same[1])


def test_continuation_and_outpainting_keep_the_given_audio_tokens(pipeline):
  given = pipeline.encode(pipeline.decode(_codes(20)))  # 0.4 s of audio, as the codec hears it
  right = pipeline.generate_tokens(['calm piano'], duration=0.9, prompt=given, seed=2)  # 45 frames: 2 windows
  assert right.shape == (1, 4, 45)
  np.testing.assert_array_equal(right[..., :20], given)
  canvas = np.full((1, 4, 45), CARD, np.int32)
  canvas[..., 25:] = given
  left = pipeline.fill_tokens(['calm piano'], canvas, np.arange(45) >= 25, seed=2, reverse=True)
  np.testing.assert_array_equal(left[..., 25:], given)
  assert left.max() < CARD

  audio = pipeline.decode(given)
  hop = pipeline.codec_config.hop_length
  assert pipeline.generate_continuation(audio, pipeline.sample_rate, ['calm piano'], 0.9).shape == (1, 1, 45 * hop)
  assert pipeline.outpaint(audio[0], pipeline.sample_rate, ['calm piano'], 'left', 0.9).shape == (1, 1, 45 * hop)
  with pytest.raises(ValueError, match='must be shorter than the output'):
    pipeline.generate_continuation(audio, pipeline.sample_rate, ['calm piano'], 0.3)


def test_long_form_three_windows_share_their_overlaps(pipeline, recorded):
  chunks = list(pipeline.stream(['calm piano'], duration=1.2, seed=2))  # 60 frames: windows at 0, 15, 30
  hop = pipeline.codec_config.hop_length
  assert [c.shape[-1] // hop for c in chunks] == [22, 15, 23]  # cut in the middle of each 15-frame overlap
  assert len(recorded) == 3
  for (_, _, previous, _), (window_in, known, out, _) in zip(recorded, recorded[1:], strict=False):
    np.testing.assert_array_equal(known[0], np.arange(30) < 15)  # the previous window's tail, fixed
    np.testing.assert_array_equal(window_in[..., :15], previous[..., 15:])
    np.testing.assert_array_equal(out[..., :15], previous[..., 15:])  # shared tokens: nothing to crossfade
  codes = pipeline.generate_tokens(['calm piano'], duration=1.2, seed=2)
  assert codes.shape == (1, 4, 60)
  for start, (_, _, out, _) in zip((0, 15, 30), recorded, strict=False):
    np.testing.assert_array_equal(codes[..., start:start + 30], out)
  audio = np.concatenate(chunks, axis=-1)
  assert audio.shape == (1, 1, 60 * hop)
  # Streamed window by window, it matches the codec's one-shot decode of the whole piece up to the codec's
  # long-range (LSTM) memory past half an overlap.
  assert np.abs(audio - pipeline.decode(codes)).max() <= 0.02 * np.abs(audio).max()


def test_loop_end_is_decoded_with_the_loop_start_as_its_right_context(pipeline, recorded):
  codes = _codes(30, seed=3)
  looped = pipeline.loop_tokens(['fast drums'], codes, seed=0)
  np.testing.assert_array_equal(looped[..., :24], codes[..., :24])  # the last quarter (6 frames) is regenerated
  assert np.any(looped[..., 24:] != codes[..., 24:])
  [(window_in, known, out, _)] = recorded  # the loop rotated left by 12: its start right after its end zone
  np.testing.assert_array_equal(known[0], (np.arange(30) < 12) | (np.arange(30) >= 18))
  np.testing.assert_array_equal(window_in[..., 18:], codes[..., :12])
  np.testing.assert_array_equal(np.roll(out, 12, axis=-1), looped)
  audio = pipeline.decode_loop(looped)  # decoded as it plays: one loop of context on either side
  hop = pipeline.codec_config.hop_length
  np.testing.assert_array_equal(audio, pipeline.decode(np.tile(looped, 3))[..., 30 * hop:60 * hop])
  assert pipeline.generate_loop(['fast drums'], duration=0.6, seed=1).shape == (1, 1, 30 * hop)


def test_non_finite_logits_are_reported_with_their_step(pipeline, monkeypatch):
  config = decoding.DecodingConfig(decoding_steps=(3, 2, 2, 2))
  decoder = decoding.MaskedDecoder(config, CARD, 3, 30)
  logits_fn = lambda codes, level: jnp.where(level >= 1, jnp.nan, jnp.zeros((4, 30, CARD)))  # NaN from level 1 on
  state = decoder.init(jnp.zeros((2, 4, 30), jnp.int32), jnp.zeros((2, 30), bool), jax.random.key(0))
  assert int(jax.jit(lambda s: decoder.run(s, logits_fn))(state).bad_step) == 3
  with pytest.raises(FloatingPointError, match=r'step 4 of 9 \(level 1, step 1 of 2\)'):
    decoding.check_finite(3, config)
  monkeypatch.setattr(pipeline, 'lm_params', jax.tree.map(lambda x: x * jnp.nan, pipeline.lm_params))
  with pytest.raises(FloatingPointError, match='step 1 of 10'):
    pipeline.generate_tokens(['calm piano'], duration=0.6)


def test_accelerators_default_to_bfloat16_compute(tiny_pipeline_folder, monkeypatch):
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  assert pretrained.default_dtype() == 'bfloat16'
  half = pretrained.load(tiny_pipeline_folder)
  monkeypatch.undo()
  assert half.lm_config.dtype == 'bfloat16' and pretrained.default_dtype() == 'float32'
  codes = half.generate_tokens(['calm piano'], duration=0.6)  # logits, softmax and sampling stay float32
  assert codes.shape == (1, 4, 30) and codes.max() < CARD


def test_rescorer_is_wired_through_the_pipeline(pipeline):
  with pytest.raises(ValueError, match='needs a rescorer'):
    pipeline.decoding_with(rescorer_weight=0.5)
  config = dataclasses.replace(pipeline.lm_config, causal=True, codebooks_pattern='delay')
  rescored = dataclasses.replace(pipeline, rescorer_config=config,
                                 rescorer_params=init_params(config, jax.random.key(5)))
  codes = rescored.generate_tokens(['calm piano'], duration=0.6, seed=4, rescorer_weight=0.5)
  assert codes.shape == (1, 4, 30) and codes.max() < CARD
  assert np.any(codes != pipeline.generate_tokens(['calm piano'], duration=0.6, seed=4))
