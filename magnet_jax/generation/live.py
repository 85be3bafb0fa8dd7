"""Live generation: music that plays while it is generated, for as long as it is listened to, and follows controls
(prompt, negative prompt, tempo, decoding preset) changed while it plays.

A `LiveStream` is long form without an end: window after window of the model's length W, each keeping the last O
frames of the previous one as given tokens and decoding the rest (`MagnetPipeline.continue_window`, the same
compiled program and the same keys as `MagnetPipeline.stream`, so a stream with fixed controls is long form: its
windows' tokens are those of `stream` for the same seed, the last window apart, which long form aligns with the
end). Only the last O frames are kept between windows, so memory does not grow with time. Each window's audio is
emitted from the middle of its overlap with the previous window to the middle of its overlap with the next
(`windows.stream_cuts`): a chunk of W - O frames (the first one O / 2 more).

Controls are read when a window starts: a change (`change`) applies from the next window that has not started, and
is heard at that window's chunk. A change may instead be timed (`at` seconds of the stream): it applies from the
first window whose chunk starts at or after that time, so a seed and the same timed changes give the same audio.

Back-pressure: iterating a stream generates a window per chunk, when asked; `run_ahead(n)` generates in a thread
at most n chunks ahead of the consumer (a bounded queue), so a consumer that plays in real time bounds both the
latency of a change and the memory.

Stopping: `run_ahead`'s consumer polls a `stop` callable; `Interrupt` makes Ctrl-C (SIGINT) and `kill` (SIGTERM)
such a stop, a flag set by the signal handler, so that the signal never raises inside a lock, a queue or the WAV
header's rewrite, and also where SIGINT was inherited as ignored (a background job of a script). A window in
progress is finished (a running XLA computation cannot be cancelled), so a stream stops within one window.

One compiled program serves every window of a stream: the text is padded to the pipeline's `text_pad_to` tokens
(longer prompts are refused) and the batch is one, so only a preset that changes the decoding settings compiles
another program (once).

Shapes: K levels, O overlap frames, W window frames, C channels, n samples of a chunk.
"""
import contextlib
import dataclasses
import math
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import BinaryIO

import numpy as np

from magnet_jax.audio.wav_stream import WavStream
from magnet_jax.decoding import DecodingConfig, presets
from magnet_jax.generation.pipeline import MagnetPipeline

MAX_SECONDS = 24 * 3600.0  # longest stream with a duration (a typo like 1e9 is refused, not run for years)
MAX_AHEAD = 16  # chunks a stream may run ahead of its consumer
BPM_RANGE = (20.0, 400.0)  # tempi a control accepts
TEXT_TOKENS = 64  # text length of a live program (`MagnetPipeline.text_pad_to`) the command and the server use
POLL_S = 0.1  # seconds between a run-ahead consumer's looks at its stop request (and a producer's at its consumer)


@dataclasses.dataclass(frozen=True)
class Controls:
  """What a window is conditioned on.

  Attributes:
    prompt: the description (not empty).
    negative: a negative prompt (None: guidance against no text, as audiocraft).
    bpm: a tempo, added to the prompt as the training captions of the embedded default state it (', 120 bpm').
    preset: a decoding preset (`decoding.presets`; None: the stream's decoding).
  """
  prompt: str
  negative: str | None = None
  bpm: float | None = None
  preset: str | None = None

  @property
  def text(self) -> str:
    """The text the window is conditioned on."""
    return self.prompt if self.bpm is None else f'{self.prompt}, {self.bpm:g} bpm'


@dataclasses.dataclass(frozen=True)
class Chunk:
  """One window's audio as it becomes final.

  Attributes:
    index: the window (0, 1, ...).
    audio: [C, n] float32 at the pipeline's sample rate.
    start: seconds of the stream before its first sample.
    controls: what its window was conditioned on.
    ready: seconds from the stream's start (its first window) until it was ready.
    compute: seconds its window took.
  """
  index: int
  audio: np.ndarray
  start: float
  controls: Controls
  ready: float
  compute: float

  def meta(self, sample_rate: int) -> dict:
    """The chunk without its audio, as JSON-ready values."""
    return {'index': self.index, 'start': self.start, 'seconds': self.audio.shape[-1] / sample_rate,
            **dataclasses.asdict(self.controls), 'ready': round(self.ready, 4), 'compute': round(self.compute, 4)}


@dataclasses.dataclass
class Timing:
  """How a stream kept up with playback that starts with its first chunk.

  Attributes:
    first_audio: seconds from the stream's start to its first chunk (the first window, compilation included).
    compile: seconds spent compiling window programs (`MagnetPipeline.compile_seconds`), the first window's included.
    audio: seconds of audio generated after the first chunk.
    compute: seconds spent generating them (the windows after the first, their compilation excluded).
    underruns: chunks ready after their play time (first audio + their start): a player would have paused.
    windows: windows generated.
  """
  first_audio: float | None = None
  compile: float = 0.0
  audio: float = 0.0
  compute: float = 0.0
  underruns: int = 0
  windows: int = 0

  @property
  def realtime_factor(self) -> float:
    """Seconds of audio per second of generation after the first window (> 1: faster than real time)."""
    return self.audio / self.compute if self.compute else math.nan

  def record(self, chunk: 'Chunk', compiling: float, sample_rate: int) -> None:
    """Counts a chunk whose window spent `compiling` seconds compiling."""
    self.windows += 1
    self.compile += compiling
    if self.first_audio is None:
      self.first_audio = chunk.ready
      return
    self.compute += chunk.compute - compiling
    self.audio += chunk.audio.shape[-1] / sample_rate
    self.underruns += chunk.ready > self.first_audio + chunk.start

  def line(self) -> str:
    first = 'no audio' if self.first_audio is None else f'first audio after {self.first_audio:.2f} s'
    return (f'{first} ({self.compile:.2f} s compiling); then {self.audio:.1f} s of audio in {self.compute:.1f} s: '
            f'real-time factor {self.realtime_factor:.2f}, {self.underruns} underrun(s) in {self.windows} windows')


def check(prompt: str, seed: int = 0, duration: float | None = None) -> None:
  """What can be checked before a model loads: a prompt, a seed in [0, 2^31), a duration within MAX_SECONDS.

  Raises:
    ValueError: one line naming the value.
  """
  if not isinstance(prompt, str) or not prompt.strip():
    raise ValueError('prompt: empty (live generation needs a description)')
  if not 0 <= seed < 2 ** 31:
    raise ValueError(f'seed: {seed}, expected 0 to 2^31 - 1')
  if duration is not None and not 0 < duration <= MAX_SECONDS:
    raise ValueError(f'duration: {duration:g} s, expected more than 0 and at most {MAX_SECONDS:g} s (or none: '
                     f'endless)')


def parse_change(line: str) -> tuple[float | None, str]:
  """A typed change: 'SECONDS:TEXT' (from that second of the stream) or 'TEXT' (from the next window) -> (seconds
  or None, text). A line whose part before the first colon is not a number is all text ('intro: soft piano')."""
  seconds, sep, rest = line.partition(':')
  try:
    at = float(seconds) if sep else None
  except ValueError:
    at = None
  if at is None or not math.isfinite(at):
    return None, line.strip()
  return at, rest.strip()


class LiveStream:
  """An endless (or `duration`-long) stream of chunks that follows its controls (see the module docstring).

  Args:
    pipeline: a MAGNeT pipeline (not Hybrid-MAGNeT: its windows cannot continue given frames).
    controls: the starting controls (a prompt, or `Controls`).
    seed: the stream's seed (window i draws with `seed` folded with i, as window i of long form).
    duration: seconds, then the stream ends (None: never), at most MAX_SECONDS.
    window: seconds of a window (default: the model's; shorter gives the first audio sooner, and less context).
    overlap: seconds of the previous window each window keeps (default: half a window).
    decoding: decoding settings a preset applies over (default: the pipeline's).
    context: entered around every window (e.g. a lock shared by streams, a device mesh).
    clock: seconds, for the timings.
  """

  def __init__(self, pipeline: MagnetPipeline, controls: Controls | str, *, seed: int = 0,
               duration: float | None = None, window: float | None = None, overlap: float | None = None,
               decoding: DecodingConfig | None = None,
               context: Callable[[], AbstractContextManager] = nullcontext,
               clock: Callable[[], float] = time.perf_counter):
    self.pipeline, self._context, self._clock = pipeline, context, clock
    if not pipeline.decoder.capabilities.known_frames:
      raise ValueError(f'live generation continues each window from the last: the {pipeline.decoder.name} decoding '
                       'strategy cannot take given frames')
    check(controls if isinstance(controls, str) else controls.prompt, seed, duration)
    self.seed, self.duration = seed, duration
    self._base = pipeline.decoding_with(decoding)
    self.controls = self._checked(Controls(controls) if isinstance(controls, str) else controls)
    self.window = window
    window = min(self._width(self._decoding(preset)) for preset in (None, *presets.PRESETS))
    self.overlap = window // 2 if overlap is None else round(overlap * pipeline.frame_rate)
    if not 0 <= self.overlap < window:
      raise ValueError(f'overlap must be >= 0 s and shorter than the window ({window / pipeline.frame_rate:g} s), '
                       f'got {overlap} s')
    self.total = None if duration is None else max(1, int(duration * pipeline.frame_rate))
    self.timing = Timing()
    self._lock = threading.Lock()
    self._timed: list[tuple[float, dict]] = []  # (seconds, changes), ascending
    self._pending: dict = {}
    self._index, self._position, self._cut = 0, 0, 0  # next window; its start frame; its chunk's first frame
    self._open = 0  # the first window whose controls are not fixed
    self._context_codes = np.zeros((1, pipeline.lm_config.n_q, 0), np.int32)
    self._started: float | None = None

  @property
  def sample_rate(self) -> int:
    return self.pipeline.sample_rate

  @property
  def next_index(self) -> int:
    """The first window whose controls are not fixed yet (a window in progress has fixed its own): where a change
    made now applies from."""
    return self._open

  @property
  def finished(self) -> bool:
    return self.total is not None and self._cut >= self.total

  def _decoding(self, preset: str | None) -> DecodingConfig:
    pipeline = self.pipeline
    return pipeline.decoding_with(self._base, **presets.overrides(preset, pipeline.lm_config.n_q,
                                                                  pipeline.rescorer_params is not None))

  def _width(self, decoding: DecodingConfig) -> int:
    """W: the frames of a window with these decoding settings."""
    model = self.pipeline.window_frames(decoding)
    return model if self.window is None else min(model, self.pipeline.frames(self.window, decoding))

  def _checked(self, controls: Controls) -> Controls:
    """The controls, or a ValueError naming what is wrong (before anything runs)."""
    check(controls.prompt)
    negative = controls.negative.strip() or None if isinstance(controls.negative, str) else controls.negative
    if negative is not None and not isinstance(negative, str):
      raise ValueError(f'negative: a text or nothing, got {negative!r}')
    if controls.bpm is not None and not BPM_RANGE[0] <= controls.bpm <= BPM_RANGE[1]:
      raise ValueError(f'bpm: {controls.bpm:g}, expected {BPM_RANGE[0]:g} to {BPM_RANGE[1]:g}')
    self._decoding(controls.preset)
    controls = dataclasses.replace(controls, prompt=controls.prompt.strip(), negative=negative)
    limit = self.pipeline.text_pad_to
    for name, text in (('prompt', controls.text), ('negative', negative)):
      count = 0 if text is None else int(self.pipeline.text_encoder.tokenize([text])[1].sum())
      if count > limit:
        raise ValueError(f'{name}: {count} tokens, at most {limit} (the text length of the stream\'s program)')
    return controls

  def change(self, at: float | None = None, **fields) -> int:
    """Changes controls (prompt=, negative=, bpm=, preset=) from the next window, or from the first window whose
    chunk starts at or after `at` seconds. Returns the first window index it can apply to.

    Raises:
      ValueError: an unknown field or a bad value, or `at` negative or past the end of the stream.
    """
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(Controls)})
    if unknown:
      raise ValueError(f'unknown control(s) {unknown}; valid: prompt, negative, bpm, preset')
    if at is not None and not 0 <= at < (self.duration or math.inf):
      raise ValueError(f'a change at {at:g} s is outside the stream (0 to {self.duration or math.inf:g} s)')
    with self._lock:
      pending = [changes for _, changes in self._timed] + [self._pending]
      probe = self.controls
      for changes in pending:  # check against what will be in force, so a bad value fails here, not mid-stream
        probe = dataclasses.replace(probe, **changes)
      self._checked(dataclasses.replace(probe, **fields))
      if at is None:
        self._pending.update(fields)
      else:
        self._timed.append((at, fields))
        self._timed.sort(key=lambda item: item[0])
      return self._open

  def _controls_for_next(self) -> Controls:
    """The controls of the next window (applying due changes), under the lock."""
    with self._lock:
      now = self._cut / self.pipeline.frame_rate
      while self._timed and self._timed[0][0] <= now + 1e-9:
        self.controls = dataclasses.replace(self.controls, **self._timed.pop(0)[1])
      if self._pending:
        self.controls = dataclasses.replace(self.controls, **self._pending)
        self._pending = {}
      self.controls = self._checked(self.controls)
      self._open = self._index + 1
      return self.controls

  def next_chunk(self) -> Chunk:
    """Generates the next window: its chunk.

    Raises:
      StopIteration: the stream reached its duration.
    """
    if self.finished:
      raise StopIteration
    if self._started is None:
      self._started = self._clock()
    controls = self._controls_for_next()
    pipeline, hop = self.pipeline, self.pipeline.codec_config.hop_length
    began, compiling = self._clock(), pipeline.compile_seconds
    decoding = self._decoding(controls.preset)
    with self._context():
      codes, audio = pipeline.continue_window([controls.text], self._context_codes, self.seed, self._index,
                                              width=self._width(decoding), negative=controls.negative,
                                              decoding=decoding)
    done = self._clock()
    following = self._position + codes.shape[-1] - self.overlap
    end = following + self.overlap // 2
    end = end if self.total is None else min(end, self.total)
    chunk = Chunk(self._index, audio[0, :, (self._cut - self._position) * hop:(end - self._position) * hop],
                  self._cut / pipeline.frame_rate, controls, done - self._started, done - began)
    self._context_codes = codes[..., codes.shape[-1] - self.overlap:]
    self._index, self._position, self._cut = self._index + 1, following, end
    self.timing.record(chunk, pipeline.compile_seconds - compiling, self.sample_rate)
    return chunk

  def __iter__(self) -> Iterator[Chunk]:
    """Chunks, each generated when asked for."""
    while not self.finished:
      yield self.next_chunk()

  def run_ahead(self, ahead: int, stop: Callable[[], bool] | None = None) -> Iterator[Chunk]:
    """Chunks generated by a thread at most `ahead` chunks ahead of the consumer (plus the one in progress).

    The iteration ends when the stream does, or within POLL_S seconds of `stop()` becoming true (e.g.
    `Interrupt.requested`). Ending it (that, closing the iterator, leaving a `for` loop over it, an exception in the
    consumer) stops the thread after its current window and waits for it, so that no window runs on after the
    stream is gone: the wait is at most one window, since the thread blocks nowhere else (it offers a chunk with
    POLL_S timeouts). An error in the thread is raised here.
    """
    if not 1 <= ahead <= MAX_AHEAD:
      raise ValueError(f'ahead must be 1 to {MAX_AHEAD} chunks, got {ahead}')
    ready: queue.Queue = queue.Queue(maxsize=ahead)
    gone = threading.Event()  # the consumer left

    def offer(item) -> bool:
      """Puts `item` once there is room; False if the consumer left first."""
      while not gone.is_set():
        try:
          ready.put(item, timeout=POLL_S)
          return True
        except queue.Full:
          pass
      return False

    def produce():
      try:
        for chunk in self:
          if not offer(chunk):
            return
      except BaseException as e:  # handed to the consumer, which raises it
        offer(e)
        return
      offer(None)

    thread = threading.Thread(target=produce, name='live-stream', daemon=True)
    thread.start()
    try:
      while stop is None or not stop():
        try:  # a timed wait, so that a stop request (or a signal's KeyboardInterrupt) is seen while no chunk comes
          item = ready.get(timeout=POLL_S)
        except queue.Empty:
          continue
        if item is None:
          return
        if isinstance(item, BaseException):
          raise item
        yield item
    finally:
      gone.set()
      thread.join()


def write_wav(stream: LiveStream, file: BinaryIO, ahead: int = 2,
              on_chunk: Callable[[Chunk], None] | None = None, stop: Callable[[], bool] | None = None) -> None:
  """Writes the stream to `file` as a WAV stream (`audio.wav_stream`), each chunk flushed as soon as it exists,
  generated at most `ahead` chunks ahead of the writes (a pipe to a player blocks them in real time). Returns when
  the stream ends or `stop()` is true (`run_ahead`); closing the WAV (its true sizes where `file` seeks) happens
  also when it is interrupted (an exception, a player that went away)."""
  wav = WavStream(file, stream.sample_rate, stream.pipeline.codec_config.channels)
  try:
    for chunk in stream.run_ahead(ahead, stop):
      wav.write(chunk.audio)
      if on_chunk is not None:
        on_chunk(chunk)
  finally:
    with contextlib.suppress(BrokenPipeError):
      wav.close()


class Interrupt:
  """Within `with Interrupt() as interrupt:`, SIGINT (Ctrl-C) and SIGTERM (`kill`) only record that they came
  (`received`: the first one's name), for a loop to poll (`requested`, e.g. `write_wav`'s `stop`) and end cleanly;
  the previous handlers are restored on leaving. The handler sets an attribute and nothing else, so it is safe
  wherever the main thread was (a KeyboardInterrupt raised inside a lock, a queue or the WAV header's rewrite
  could leave them broken). It is installed also where SIGINT was inherited as ignored, which Python keeps
  ignoring otherwise (a job started with `&` by a script or a non-interactive shell: such a stream would never
  end at Ctrl-C), as ffmpeg and arecord do. Signal handlers belong to the main thread: elsewhere it does nothing.
  """

  SIGNALS = (signal.SIGINT, signal.SIGTERM)

  def __init__(self):
    self.received: str | None = None
    self._previous: dict = {}

  def requested(self) -> bool:
    return self.received is not None

  def _handle(self, number: int, frame) -> None:
    del frame
    self.received = self.received or signal.Signals(number).name

  def __enter__(self) -> 'Interrupt':
    if threading.current_thread() is threading.main_thread():
      self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
    return self

  def __exit__(self, *exc_info) -> None:
    for number, handler in self._previous.items():
      signal.signal(number, handler)
    self._previous = {}


def follow(stream: LiveStream, lines: Iterable[str], on_error: Callable[[str], None]) -> threading.Thread:
  """Applies typed changes (`parse_change`: 'SECONDS:TEXT' or 'TEXT') to the stream's prompt, one per line, in a
  daemon thread, as they arrive; a bad one is told to `on_error` (one line) and skipped."""
  def read():
    for line in lines:
      if not line.strip():
        continue
      at, text = parse_change(line)
      try:
        stream.change(at, prompt=text)
      except ValueError as e:
        on_error(str(e))

  thread = threading.Thread(target=read, name='live-changes', daemon=True)
  thread.start()
  return thread
