"""Durations exact to the sample: every output a duration sets has round(duration * rate) samples, in every mode
and past the model's window; a loop keeps its exact length and stays seamless.

Pipeline: random weights, W = 30-frame window (0.6 s) of 3-frame spans, hop 32 at 1.6 kHz (`tiny_pipeline_folder`).
"""
import numpy as np
import pytest

from magnet_jax.generation import request
from magnet_jax.generation.request import Request, Tempo

RATE = 1600
# 0.1 s: 5 frames, not whole spans (6 decoded); 0.37 s: 18.5 frames; 0.6 s: one window;
# 1.33 s: 66.5 frames, four windows.
DURATIONS = (0.1, 0.37, 0.6, 1.33)
AUDIO = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 950)).astype(np.float32)  # 29.7 frames: not whole ones


def _audio(pipeline, req: Request) -> np.ndarray:
  return np.concatenate(list(request.generate(pipeline, [req])), axis=-1)


@pytest.mark.parametrize('duration', DURATIONS)
def test_text_mode_gives_exactly_the_requested_samples(pipeline, duration):
  assert _audio(pipeline, Request('calm piano', 1, duration=duration)).shape == (1, 1, round(duration * RATE))


def test_the_cut_output_is_the_start_of_the_frames_audio(pipeline):
  """The exact output is the decoded frames' audio, cut at the duration (nothing resampled or padded)."""
  codes = pipeline.generate_tokens(['calm piano'], duration=0.37, seed=1)
  assert codes.shape[-1] == 21  # 18.5 frames -> 19 -> whole spans
  np.testing.assert_array_equal(pipeline.generate(['calm piano'], duration=0.37, seed=1),
                                pipeline.decode(codes)[..., :592])


@pytest.mark.parametrize('mode', ['continuation', 'outpaint'])
def test_continuation_and_outpaint_are_exact_and_keep_the_audio_in_place(pipeline, mode):
  out = _audio(pipeline, Request('calm piano', 2, mode, 1.33, AUDIO, RATE))
  assert out.shape == (1, 1, 2128)
  # the audio where it was: its rendering lines up best unshifted (a frame's offset would line up a hop away)
  rendered = pipeline.decode(pipeline.encode(AUDIO[None]))[0, 0, :AUDIO.shape[-1]]
  n, hop = AUDIO.shape[-1] - 64, 32
  at = (lambda lag: out[0, 0, 32 + lag:32 + lag + n]) if mode == 'continuation' else \
      (lambda lag: out[0, 0, out.shape[-1] - AUDIO.shape[-1] + 32 + lag:][:n])
  fit = {lag: np.corrcoef(at(lag), rendered[32:32 + n])[0, 1] for lag in range(-hop, hop + 1)}
  assert max(fit, key=fit.get) == 0

def test_loops_and_infill_have_their_exact_length(pipeline):
  loop = _audio(pipeline, Request('drums', 3, 'loop', 0.58))  # 928 samples: 29 frames, made on a 30-frame grid
  assert loop.shape == (1, 1, 928)
  wrap = np.abs(loop[..., 0] - loop[..., -1]).max()  # seamless: the wrap steps no more than the loop's own samples
  assert wrap <= np.quantile(np.abs(np.diff(loop[0, 0])), 0.99)
  assert _audio(pipeline, Request('drums', 3, 'loop', audio=AUDIO, sample_rate=RATE)).shape == (1, 1, 950)
  tempo = Tempo(bpm=310, bars=1, beats_per_bar=3)  # 929 samples (29.03 frames)
  assert _audio(pipeline, Request('drums', 3, 'loop', tempo=tempo)).shape == (1, 1, tempo.samples(RATE))
  assert _audio(pipeline, Request('drums', 3, 'infill', audio=AUDIO, sample_rate=RATE,
                                  infill=(0.05, 0.15))).shape == (1, 1, 950)


def test_a_duration_shorter_than_one_span_is_one_line(pipeline):
  with pytest.raises(ValueError, match=r'duration 0.05 s is shorter than one 3-frame span \(0.06 s\)'):
    pipeline.generate(['a'], duration=0.05)
