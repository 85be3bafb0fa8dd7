"""The API's request body, validated by pydantic: unknown fields and wrong types are errors (no coercion)."""
import dataclasses
from typing import Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from magnet_jax.audio.files import FORMATS
from magnet_jax.decoding import presets
from magnet_jax.decoding.config import FIELDS, help_text
from magnet_jax.generation import prompt_schedule
from magnet_jax.generation import request as request_lib
from magnet_jax.generation.best_of import MAX_CANDIDATES
from magnet_jax.generation.prompts import MAX_SEED, Prompt
from magnet_jax.generation.request import MODES

_STRICT = ConfigDict(extra='forbid', strict=True, allow_inf_nan=False)
MAX_DEADLINE_S = 7 * 24 * 3600.0  # the longest deadline a request or --deadline may set


def _decoding_type(field: dataclasses.Field):
  """A DecodingConfig field's type with its metadata's bounds as pydantic constraints (tuples as JSON arrays)."""
  meta = field.metadata
  if field.type is str:
    return Literal[meta['choices']]
  if field.type is bool:
    return bool
  if field.type is float:
    return Annotated[float, Field(ge=meta['min'], le=meta['max'], allow_inf_nan=False)]
  number = Annotated[int, Field(ge=meta['min'], le=meta['max'])]
  return number if field.type is int else Annotated[list[number], Field(min_length=1)]


DecodingOverrides = pydantic.create_model(
    'DecodingOverrides', __config__=_STRICT, __doc__='DecodingConfig fields to override (after the preset).',
    **{name: (_decoding_type(field) | None, Field(None, description=help_text(name)))
       for name, field in FIELDS.items()})


MAX_SCHEDULE = 32  # prompt changes per request
MAX_BARS = 1024  # bars of a tempo loop (its length is also capped by the server's --max-duration)
MAX_BEATS_PER_BAR = 64


class LoopTempo(BaseModel):
  """A loop of exactly `bars` bars of `beats_per_bar` beats at `bpm` (the command line's --bpm / --bars)."""
  model_config = _STRICT

  bpm: float = Field(gt=0, allow_inf_nan=False, description='Beats per minute.')
  bars: int = Field(ge=1, le=MAX_BARS, description='Bars in the loop.')
  beats_per_bar: int = Field(4, ge=1, le=MAX_BEATS_PER_BAR, description='Beats per bar.')


class GenerationRequest(BaseModel):
  """One generation: an output per prompt, prompt i with seed `seed + i`."""
  model_config = _STRICT

  prompts: list[str] = Field(min_length=1, description='Text prompts; one output each.')
  duration: float | None = Field(None, gt=0, description='Seconds of output (default: the model\'s). For '
                                 'continuation and outpaint: in all, the uploaded audio included. Not for infill.')
  seed: int = Field(0, ge=0, lt=MAX_SEED, description='Seed of the first prompt; prompt i uses seed + i.')
  preset: Literal[tuple(sorted(presets.PRESETS))] | None = Field(None, description='Sampling preset.')
  decoding: DecodingOverrides = Field(default_factory=DecodingOverrides)
  mode: Literal[MODES] = Field('text', description='text | continuation (upload, then new music) | infill '
                               '(regenerate a span of the upload) | outpaint (new music leading into the upload) | '
                               'loop (a seamless loop, of the upload if one is given).')
  infill: list[float] | None = Field(None, min_length=2, max_length=2,
                                     description='Seconds [start, end) of the upload to regenerate.')
  best_of: int = Field(1, ge=1, le=MAX_CANDIDATES, description='Candidates per output (seeds seed, seed + 1, ...); '
                       'the scorer\'s best is kept and its seed recorded.')
  scorer: str = Field('stats', pattern='^[a-z_]+$', description='Best-of scorer: a registered name without an '
                      'argument (generation.best_of.SCORERS; model-folder scorers are the command line\'s).')
  negative: str | None = Field(None, min_length=1, description='A negative prompt: guidance steers away from this '
                                'text instead of from no text (every output).')
  schedule: list[str] | None = Field(None, min_length=1, max_length=MAX_SCHEDULE, description='Prompt changes, '
                                     'as the command line\'s --schedule: "SECONDS:TEXT" entries, times > 0 and '
                                     'increasing; every output starts with its prompt and changes text at each.')
  tempo: LoopTempo | None = Field(None, description='Mode loop without audio or duration: a loop of exactly this '
                                  'many bars at this tempo.')
  overlap: float | None = Field(None, ge=0, allow_inf_nan=False, description='Long form: seconds of context each '
                                'window keeps of the previous one (default: half a window; less than a window).')
  format: Literal[tuple(FORMATS)] = Field('wav', description='Output file format (24-bit).')
  deadline_s: float | None = Field(None, gt=0, le=MAX_DEADLINE_S, description='Seconds within which the job must '
                                   'start (default: the server\'s); a job still queued then expires.')

  def overrides(self) -> dict:
    """The decoding overrides that were set (lists as the config's tuples)."""
    return {name: tuple(value) if isinstance(value, list) else value
            for name, value in self.decoding.model_dump(exclude_none=True).items()}

  def prompts_given(self) -> list[Prompt]:
    """Each output's prompt: its text, or with `schedule` the schedule from its text at 0 s (checked by the
    library's schedule rules, `prompt_schedule.entries`), and its seed.

    Raises:
      ValueError: a schedule entry that is not SECONDS:TEXT, or a schedule the library refuses.
    """
    if self.schedule is None:
      return [Prompt(text, self.seed + i, negative=self.negative) for i, text in enumerate(self.prompts)]
    changes = []
    for j, entry in enumerate(self.schedule):
      try:
        changes.append(prompt_schedule.parse_entry(entry))
      except ValueError as e:
        raise ValueError(f'schedule.{j}: each entry is SECONDS:TEXT (e.g. "30:add drums"), got {entry!r}') from e
    try:
      return [Prompt.scheduled([(0.0, text), *changes], seed=self.seed + i, negative=self.negative)
              for i, text in enumerate(self.prompts)]
    except ValueError as e:
      raise ValueError(f'schedule: {e}') from e

  def to_requests(self, prompts: list[Prompt], audio, sample_rate: int) -> list[request_lib.Request]:
    """The generation request of each output (the one place the API's fields become `request.Request`s)."""
    tempo = None if self.tempo is None else request_lib.Tempo(self.tempo.bpm, self.tempo.bars,
                                                               self.tempo.beats_per_bar)
    infill = None if self.infill is None else tuple(self.infill)
    return [request_lib.Request(prompt.description, prompt.seed, self.mode, self.duration, audio, sample_rate,
                                infill, self.negative, self.overlap, tempo) for prompt in prompts]


class Created(BaseModel):
  id: str
  status: str = Field(description='URL of the job\'s status.')
  events: str = Field(description='URL of its progress stream (server-sent events).')


class Error(BaseModel):
  error: str = Field(description='What was wrong, in one line.')
