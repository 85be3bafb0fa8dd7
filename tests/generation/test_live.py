"""Live generation (`generation.live`) on the tiny random pipeline (30-frame windows): it is long form window for
window, reproducible under a seed with timed changes, a change lands on the next window and in its chunk's
metadata, look-ahead is bounded, one compiled program serves a stream whatever its texts, and bad input is one
line."""
import io
import os
import signal
import threading
import time

import numpy as np
import pytest
import soundfile

from magnet_jax.audio import wav_stream
from magnet_jax.generation import live


def _audio(chunks) -> np.ndarray:
  return np.concatenate([chunk.audio for chunk in chunks], axis=-1)


def test_a_stream_is_long_form_window_for_window(pipeline, recorded):
  chunks = list(live.LiveStream(pipeline, 'calm piano', seed=3, duration=2.0))
  assert [c.index for c in chunks] == list(range(7)) and chunks[0].start == 0
  assert sum(c.audio.shape[-1] for c in chunks) == 2.0 * pipeline.sample_rate
  assert np.allclose([c.start for c in chunks[1:]], [c.start + c.audio.shape[-1] / pipeline.sample_rate
                                                      for c in chunks[:-1]])  # contiguous
  live_windows = recorded[:]
  recorded.clear()
  reference = list(pipeline.stream(['calm piano'], duration=2.0, seed=3))
  # Long form aligns its last window with the end; every window before it is the same, tokens and audio.
  assert len(live_windows) == len(recorded) + 1  # live's last window is cut at the duration instead
  for ours, theirs in zip(live_windows[:-2], recorded[:-1], strict=True):
    assert all(np.array_equal(a, b) for a, b in zip(ours[:3], theirs[:3], strict=True))
  for ours, theirs in zip(chunks[:4], reference[:4], strict=True):
    np.testing.assert_array_equal(ours.audio, theirs[0])


def test_reproducible_under_a_seed_with_timed_changes(pipeline):
  def run(seed):
    stream = live.LiveStream(pipeline, 'calm piano', seed=seed, duration=1.5)
    stream.change(0.7, prompt='loud drums', negative='noise')
    return list(stream)

  first, again, other = run(5), run(5), run(6)
  np.testing.assert_array_equal(_audio(first), _audio(again))
  assert not np.allclose(_audio(first), _audio(other))
  # A change at 0.7 s applies from the first chunk that starts at or after it.
  assert [(c.start >= 0.7, c.controls.prompt, c.controls.negative) for c in first] == (
      [(False, 'calm piano', None)] * 2 + [(True, 'loud drums', 'noise')] * 3)


def test_a_change_applies_from_the_next_window_and_shows_in_its_metadata(pipeline, recorded):
  stream = live.LiveStream(pipeline, 'calm piano', seed=0)
  first = stream.next_chunk()
  assert stream.change(prompt='loud drums', bpm=120) == 1
  second = stream.next_chunk()
  assert first.meta(pipeline.sample_rate)['prompt'] == 'calm piano'
  meta = second.meta(pipeline.sample_rate)
  assert (meta['index'], meta['prompt'], meta['bpm']) == (1, 'loud drums', 120)
  assert second.controls.text == 'loud drums, 120 bpm'
  # The window was conditioned on the new text: its conditions are that text's states.
  expected = pipeline.cfg_conditions(['loud drums, 120 bpm'])[0]
  np.testing.assert_array_equal(recorded[1][3][0], np.asarray(expected))
  assert not np.array_equal(recorded[0][3][0], recorded[1][3][0])


def test_run_ahead_is_bounded_and_stops_with_its_consumer(pipeline):
  stream = live.LiveStream(pipeline, 'calm piano', seed=0)
  chunks = stream.run_ahead(2)
  assert next(chunks).index == 0
  deadline = time.monotonic() + 120
  while stream.timing.windows < 4 and time.monotonic() < deadline:
    time.sleep(0.05)
  time.sleep(1.0)  # dozens of windows' time: the producer must stay blocked
  assert stream.timing.windows == 4  # the one consumed, two queued, one waiting for room
  assert [next(chunks).index for _ in range(2)] == [1, 2]
  chunks.close()  # the consumer leaves: the producer stops
  count = stream.timing.windows
  time.sleep(0.5)
  assert stream.timing.windows == count <= 6


def test_one_compiled_program_serves_every_window(pipeline, monkeypatch):
  monkeypatch.setattr(pipeline, 'text_pad_to', live.TEXT_TOKENS)  # a text length no other test compiles
  compiled = []
  monkeypatch.setattr(pipeline, 'on_compile', compiled.append)
  programs = len(pipeline._programs)
  stream = live.LiveStream(pipeline, 'calm piano', seed=1)
  for index, change in enumerate([{}, {'prompt': 'a much longer description of loud fast drums with a bass line'},
                                  {'negative': 'noise and hiss'}, {'bpm': 90}, {'negative': None}, {}]):
    stream.change(**change)
    assert stream.next_chunk().index == index
  assert len(compiled) == 1 and len(pipeline._programs) == programs + 1
  stream.change(preset='balanced')  # other decoding settings: another program, once
  stream.next_chunk()
  stream.change(preset=None)
  stream.next_chunk()
  stream.change(preset='balanced')
  stream.next_chunk()
  assert len(compiled) == 2


def test_bad_input_is_one_line(pipeline):
  for kwargs, message in [({'controls': ' '}, 'prompt: empty'),
                          ({'controls': 'piano', 'duration': 1e9}, 'duration: 1e\\+09 s, expected more than 0'),
                          ({'controls': 'piano', 'seed': -1}, 'seed: -1'),
                          ({'controls': 'piano', 'overlap': 5.0}, 'overlap must be >= 0 s and shorter than the window'),
                          ({'controls': 'piano', 'window': 0.01}, 'shorter than one 3-frame span'),
                          ({'controls': live.Controls('piano', bpm=1000)}, 'bpm: 1000, expected 20 to 400'),
                          ({'controls': live.Controls('piano', preset='best')}, "unknown preset 'best'")]:
    with pytest.raises(ValueError, match=message):
      live.LiveStream(pipeline, **kwargs)
  stream = live.LiveStream(pipeline, 'piano', duration=2.0)
  for kwargs, message in [({'at': 2.5, 'prompt': 'drums'}, r'a change at 2.5 s is outside the stream \(0 to 2 s\)'),
                          ({'prompt': ''}, 'prompt: empty'), ({'tempo': 3}, r"unknown control\(s\) \['tempo'\]"),
                          ({'prompt': 'piano ' * 20}, 'prompt: 22 tokens, at most 8')]:
    with pytest.raises(ValueError, match=message):
      stream.change(**kwargs)
  with pytest.raises(ValueError, match='ahead must be 1 to 16'):
    next(stream.run_ahead(0))
  assert live.parse_change('12.5: add drums') == (12.5, 'add drums')
  assert live.parse_change('intro: soft piano') == (None, 'intro: soft piano')


def test_wav_stream_is_a_valid_wav_seekable_or_not(pipeline):
  chunks = list(live.LiveStream(pipeline, 'calm piano', duration=0.8))
  seekable = io.BytesIO()
  live.write_wav(live.LiveStream(pipeline, 'calm piano', duration=0.8), seekable)
  audio, rate = soundfile.read(io.BytesIO(seekable.getvalue()), dtype='float32')
  assert rate == pipeline.sample_rate and audio.shape == (int(0.8 * rate),)
  np.testing.assert_allclose(audio, np.clip(_audio(chunks)[0], -1, 1), atol=1 / 32767)

  class Pipe(io.BytesIO):
    def seekable(self):
      return False

  pipe = Pipe()
  live.write_wav(live.LiveStream(pipeline, 'calm piano', duration=0.8), pipe)
  data = pipe.getvalue()
  assert data[:wav_stream.HEADER_BYTES] == wav_stream.header(rate, 1)  # the stream's header: sizes unknown
  assert data[wav_stream.HEADER_BYTES:] == seekable.getvalue()[wav_stream.HEADER_BYTES:]


def test_a_signal_stops_an_endless_wav_whole_and_its_producer(pipeline):
  """SIGTERM (as SIGINT) inside `Interrupt` only sets a flag: `write_wav` of an endless stream returns within a
  window or so, the WAV's header states what was written, the producer thread is gone and the handlers are back."""
  before = {number: signal.getsignal(number) for number in live.Interrupt.SIGNALS}
  stream, out = live.LiveStream(pipeline, 'calm piano', seed=0), io.BytesIO()

  def told(chunk):
    if chunk.index == 2:
      os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (the main) thread: its handler runs here

  with live.Interrupt() as interrupt:
    live.write_wav(stream, out, ahead=2, on_chunk=told, stop=interrupt.requested)
  assert interrupt.received == 'SIGTERM'
  assert {number: signal.getsignal(number) for number in live.Interrupt.SIGNALS} == before
  assert 'live-stream' not in [thread.name for thread in threading.enumerate()]
  data = out.getvalue()
  assert data[:wav_stream.HEADER_BYTES] == wav_stream.header(pipeline.sample_rate, 1, len(data) - 44)
  written = (len(data) - wav_stream.HEADER_BYTES) // 2
  # Chunks 0-2 were written; what was queued when the flag was seen (at most `ahead`) may follow, no more.
  sizes = np.cumsum([chunk.audio.shape[-1] for chunk in live.LiveStream(pipeline, 'calm piano', duration=3.0)])
  assert written in sizes[2:5]
