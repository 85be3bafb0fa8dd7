"""One generation request, the same for the command line, the server and the evaluation commands.

A `Request` is one output: a prompt (text, schedule or None), a seed, and what to do with them, its `mode`:

  text          text -> music of any `duration` (windowed past the model's window), streamed window by window.
  continuation  the `audio`, then its continuation: `duration` seconds in all.
  outpaint      new music leading into the `audio` (on its left): `duration` seconds in all.
  infill        the `audio` with seconds `infill` = (start, end) regenerated; it keeps the audio's length.
  loop          a seamless loop of `duration` seconds, of the `audio`'s length, or of exactly `tempo`'s bars.

Durations are exact: an output whose length a duration sets has round(duration * rate) samples (its frames are
planned to cover it, whole spans within the model's window, and their audio cut there); a loop is resampled
periodically to its exact length, so it stays seamless.

`check` holds every mode's rules (what it needs, what it refuses, durations against the audio and a cap) and needs
no model, so a front end calls it before anything loads or queues. `generate` runs outputs of one `key` as one
batch through the pipeline's own method for their mode (`MagnetPipeline.stream` / `outpaint` / `infill` /
`generate_loop`), so an output is the same audio whichever front end asked for it: the pipeline decodes each
example's audio on its own (`MagnetPipeline.decode`), and its random draws are its own (`MagnetPipeline`).

Shapes: B batch, C channels, N samples.
"""
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation.pipeline import MagnetPipeline, Progress, StepProgress, tempo_loop_samples
from magnet_jax.generation.prompt_schedule import Description
from magnet_jax.generation.prompts import check_seeds

MODES = ('text', 'continuation', 'infill', 'outpaint', 'loop')
NEEDS_AUDIO = ('continuation', 'infill', 'outpaint')  # the modes that transform given audio
KEEPS_LENGTH = ('infill',)  # the output has the audio's length; a loop of given audio too


@dataclasses.dataclass(frozen=True)
class Tempo:
  """An exact-length loop: `bars` bars of `beats_per_bar` beats at `bpm` (`tempo_loop_samples`)."""
  bpm: float
  bars: int
  beats_per_bar: int = 4

  def __post_init__(self):
    tempo_loop_samples(self.bpm, self.bars, 1, self.beats_per_bar)  # checks the values

  def samples(self, sample_rate: int) -> int:
    return tempo_loop_samples(self.bpm, self.bars, sample_rate, self.beats_per_bar)

  @property
  def seconds(self) -> float:
    return self.bars * self.beats_per_bar * 60 / self.bpm


@dataclasses.dataclass(frozen=True, eq=False)
class Request:
  """One output to generate (see the module docstring for the modes).

  Attributes:
    description: the prompt: text, a prompt schedule (`prompt_schedule`), or None (unconditional).
    seed: its seed (`MagnetPipeline`: the output's random draws depend on it alone).
    mode: one of MODES.
    duration: seconds in all, given audio included (None: the model's default); not for infill or a loop of audio.
    audio: [C, N] float32 at `sample_rate` (continuation, outpaint, infill; optional for loop).
    sample_rate: the audio's rate.
    infill: seconds [start, end) of the audio to regenerate (infill only).
    negative: a negative prompt (guidance steers away from it) or None.
    overlap: long form: seconds of context each window keeps (None: half a window).
    tempo: a loop of exactly these bars (a generated loop, without duration).
  """
  description: Description = None
  seed: int = 0
  mode: str = 'text'
  duration: float | None = None
  audio: np.ndarray | None = None
  sample_rate: int | None = None
  infill: tuple[float, float] | None = None
  negative: str | None = None
  overlap: float | None = None
  tempo: Tempo | None = None

  @property
  def audio_seconds(self) -> float | None:
    return None if self.audio is None else self.audio.shape[-1] / self.sample_rate

  @property
  def key(self) -> tuple:
    """Outputs with equal keys run in one `generate` call (their audio may differ, not its length)."""
    audio = None if self.audio is None else (self.audio.shape, self.sample_rate)
    return self.mode, self.duration, audio, self.infill, self.overlap, self.tempo


def check(request: Request, max_duration: float = math.inf, default_duration: float | None = None) -> None:
  """The mode's rules, without the model: raises ValueError with one line naming the field.

  Args:
    request: the output.
    max_duration: the longest output accepted, in seconds (requested, or the audio's for modes that keep it).
    default_duration: the model's default duration, once known: a request without a duration of its own is then
      checked with it (continuation and outpaint must exceed their audio).
  """
  mode, seconds = request.mode, request.audio_seconds
  if mode not in MODES:
    raise ValueError(f'mode must be one of {list(MODES)}, got {mode!r}')
  check_seeds([request.seed], 1)
  if mode in NEEDS_AUDIO and request.audio is None:
    raise ValueError(f'mode {mode} needs audio (an audio prompt or an upload)')
  if mode == 'text' and request.audio is not None:
    raise ValueError('mode text takes no audio; use continuation, infill, outpaint or loop')
  if (request.infill is not None) != (mode == 'infill'):
    raise ValueError('an infill span [start, end) goes with mode infill, and only with it')
  if request.overlap is not None and not 0 <= request.overlap < math.inf:
    raise ValueError(f'overlap must be a finite number of seconds >= 0, got {request.overlap:g}')
  if request.tempo is not None and (mode != 'loop' or request.audio is not None or request.duration is not None):
    raise ValueError('a tempo (bpm and bars) makes a generated loop, without audio or a duration')
  if request.tempo is not None and not request.tempo.seconds <= max_duration:
    raise ValueError(f'{request.tempo.bars} bars at {request.tempo.bpm:g} bpm make a {request.tempo.seconds:g} s '
                     f'loop, at most {max_duration:g} s')
  if request.audio is not None and not np.all(np.isfinite(request.audio)):
    raise ValueError('the audio holds non-finite samples (NaN or inf)')
  if mode in KEEPS_LENGTH or (mode == 'loop' and request.audio is not None):
    if request.duration is not None:
      raise ValueError(f'duration does not apply to {mode} with audio: the output keeps the audio\'s length')
    if seconds > max_duration:
      raise ValueError(f'the audio is {seconds:.2f} s, at most {max_duration:g} s')
  elif request.duration is not None and not 0 < request.duration <= max_duration:
    raise ValueError(f'duration must be > 0 seconds and at most {max_duration:g} s, got {request.duration:g}')
  if mode == 'infill':
    start, end = request.infill
    if not 0 <= start < end <= seconds:
      raise ValueError(f'infill {start:g}:{end:g} is outside the audio (0-{seconds:.2f} s) or empty')
  total = request.duration or default_duration
  if mode in ('continuation', 'outpaint') and total is not None and total <= seconds:
    raise ValueError(f'duration ({total:g} s, the whole output) must exceed the audio ({seconds:.2f} s) to {mode} it')


def requested_duration(request: Request, default: float) -> float | None:
  """The seconds the output lasts as requested (its duration, or the model's `default`), which it has exactly:
  round(seconds * rate) samples. None where the audio (infill, a loop of audio) or a tempo sets its length."""
  keeps_length = request.mode in KEEPS_LENGTH or (request.mode == 'loop' and request.audio is not None)
  return None if keeps_length or request.tempo is not None else request.duration or default


def _controls(requests: Sequence[Request], decoding: DecodingConfig, on_step: StepProgress | None) -> dict:
  negatives = [r.negative for r in requests]
  return {'negative': negatives if any(negatives) else None, 'on_step': on_step, 'decoding': decoding}


def _audio(pipeline: MagnetPipeline, requests: Sequence[Request]) -> np.ndarray:
  """The batch's audio [B, C, N] at the codec's rate and channels."""
  first = requests[0]
  return pipeline.prepare_audio(np.stack([r.audio for r in requests]), first.sample_rate, len(requests))


def _stream(pipeline, requests, texts, seeds, controls, progress) -> Iterator[np.ndarray]:
  first = requests[0]
  prompt = None if first.audio is None else pipeline.encode(_audio(pipeline, requests))
  yield from pipeline.stream(texts, first.duration, seeds, prompt, first.overlap, progress, **controls)


def _outpaint(pipeline, requests, texts, seeds, controls, progress) -> Iterator[np.ndarray]:
  duration = requests[0].duration or pipeline.duration
  yield pipeline.outpaint(_audio(pipeline, requests), pipeline.sample_rate, texts, 'left', duration, seeds,
                          **controls)


def _infill(pipeline, requests, texts, seeds, controls, progress) -> Iterator[np.ndarray]:
  yield pipeline.infill(_audio(pipeline, requests), pipeline.sample_rate, texts, *requests[0].infill, seeds,
                        **controls)


def _loop(pipeline, requests, texts, seeds, controls, progress) -> Iterator[np.ndarray]:
  first = requests[0]
  audio = None if first.audio is None else _audio(pipeline, requests)
  samples = None if first.tempo is None else first.tempo.samples(pipeline.sample_rate)
  yield pipeline.generate_loop(texts, first.duration, seeds, audio, pipeline.sample_rate, samples=samples,
                               **controls)


def passes(request: Request) -> int:
  """Decoding passes of a request: `on_step` counts the steps of each from 1 (a generated loop is decoded, then
  its seam)."""
  return 2 if request.mode == 'loop' and request.audio is None else 1


Run = Callable[..., Iterator[np.ndarray]]
RUNS: dict[str, Run] = {'text': _stream, 'continuation': _stream, 'outpaint': _outpaint, 'infill': _infill,
                        'loop': _loop}


def generate(pipeline: MagnetPipeline, requests: Sequence[Request], decoding: DecodingConfig | None = None, *,
             progress: Progress | None = None, on_step: StepProgress | None = None) -> Iterator[np.ndarray]:
  """Runs outputs of one `key` together: audio [B, C, n] chunks at the pipeline's rate (one per window for text and
  continuation, streamed; one chunk for the other modes), B = len(requests), in order.

  Args:
    pipeline: the pipeline.
    requests: outputs with equal `key`, checked (`check`).
    decoding: the checked decoding config (`MagnetPipeline.decoding_with`; None: the pipeline's).
    progress: told (windows done, windows in all) after each window of a streamed mode.
    on_step: told (steps done, steps in all) after every decoding step; True stops the run (`Cancelled`).
  """
  if not requests or len({r.key for r in requests}) != 1:
    raise ValueError('a batch needs one or more outputs of one key (mode, duration, audio length, infill span, '
                     'overlap, tempo)')
  texts = [r.description for r in requests]
  seeds = [r.seed for r in requests]
  yield from RUNS[requests[0].mode](pipeline, requests, texts, seeds,
                                    _controls(requests, decoding or pipeline.decoding, on_step), progress)
