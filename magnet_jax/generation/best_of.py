"""Best-of-N: N candidates per output (seeds seed, seed + 1, ..., seed + N - 1), generated in batches of a bounded
size, and the one a scorer ranks highest.

Scorers are looked up by name in `SCORERS`: 'NAME' or 'NAME:ARGUMENT' (e.g. 'clap:FOLDER', a local CLAP model).
Generation defines the role (`Scorer`) and the registry; the scorers themselves judge audio against text, which
is evaluation's work, so `evaluation.prompt_following` registers them ('stats', 'clap') when it is imported, as
the command line and the server do. Anything else that follows the protocol can be registered the same way.

Shapes: B outputs, N candidates each, C channels, S samples.
"""
import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import prompt_schedule
from magnet_jax.generation import request as request_lib
from magnet_jax.generation.pipeline import MagnetPipeline, Progress, StepProgress
from magnet_jax.generation.request import Request

MAX_CANDIDATES = 16  # more would rarely change the winner and multiplies the work


class Scorer(Protocol):
  """How well each clip follows its text: (texts [B], audio [B, C, S], sample rate) -> scores [B], higher is
  better; scores compare candidates of one text, not texts with each other."""

  def __call__(self, texts: Sequence[str | None], audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


# A scorer from the part of its name after ':' (None when there is none), e.g. a model folder; may load a model.
ScorerFactory = Callable[[str | None], Scorer]
SCORERS: dict[str, ScorerFactory] = {}


def register(name: str, factory: ScorerFactory) -> None:
  """Makes the scorers of `factory` available as 'NAME' / 'NAME:ARGUMENT' (--best-of-scorer, the API's scorer)."""
  if not name or ':' in name:
    raise ValueError(f'a scorer name is a non-empty word without ":", got {name!r}')
  SCORERS[name] = factory


def scorer(spec: str) -> Scorer:
  """The scorer named by `spec` ('NAME' or 'NAME:ARGUMENT').

  Raises:
    ValueError: an unknown name (and the factory's own errors, e.g. a missing model folder).
  """
  name, _, argument = spec.partition(':')
  if name not in SCORERS:
    raise ValueError(f'unknown best-of scorer {spec!r}; known: {sorted(SCORERS)} (NAME or NAME:ARGUMENT)')
  return SCORERS[name](argument or None)


def check(count: int, spec: str) -> None:
  """Checks 1 <= `count` <= MAX_CANDIDATES candidates per output and, for more than one, that `spec` names a
  scorer (loading it, so a missing model folder is found before generating)."""
  if not 1 <= count <= MAX_CANDIDATES:
    raise ValueError(f'best-of must be between 1 and {MAX_CANDIDATES} candidates, got {count}')
  if count > 1:
    scorer(spec)


def candidates(requests: Sequence[Request], count: int) -> list[Request]:
  """Each request's `count` candidates in a row: request b's candidate c has seed b.seed + c ([B * N])."""
  return [dataclasses.replace(r, seed=r.seed + c) for r in requests for c in range(count)]


def _text(description: prompt_schedule.Description) -> str | None:
  """What a candidate is scored against: its text, or a schedule's one-line form."""
  return description if description is None or isinstance(description, str) else prompt_schedule.describe(
      prompt_schedule.entries(description))


def choose(requests: Sequence[Request], count: int, audio: np.ndarray, spec: str,
           sample_rate: int) -> tuple[np.ndarray, list[dict]]:
  """Each request's best candidate of `audio` [B * N, C, S] (`candidates`' order).

  Returns:
    (audio [B, C, S], per request {'seed': the chosen candidate's seed, 'best_of': {'scorer', 'seeds', 'scores',
    'chosen'}}); for N = 1 the audio as it is and {'seed'} alone.
  """
  if count == 1:
    return audio, [{'seed': r.seed} for r in requests]
  texts = [_text(r.description) for r in requests for _ in range(count)]
  scores = np.asarray(scorer(spec)(texts, audio, sample_rate), np.float64).reshape(len(requests), count)
  chosen = [int(np.argmax(row)) for row in scores]  # the first among equals
  picked = audio.reshape(len(requests), count, *audio.shape[1:])[np.arange(len(requests)), chosen]
  return picked, [{'seed': r.seed + c, 'best_of': {'scorer': spec, 'seeds': [r.seed + j for j in range(count)],
                                                   'scores': row.tolist(), 'chosen': c}}
                  for r, row, c in zip(requests, scores, chosen, strict=True)]


def generate(pipeline: MagnetPipeline, requests: Sequence[Request], count: int, spec: str, chunk: int,
             decoding: DecodingConfig | None = None, *, progress: Progress | None = None,
             on_step: StepProgress | None = None) -> tuple[np.ndarray, list[dict]]:
  """The best of `count` candidates of each request (of one key): (audio [B, C, S], records as `choose`).

  The B * N candidates run `chunk` at a time (`request.generate`), so N does not grow the batch past `chunk`.
  """
  check(count, spec)
  rows = candidates(requests, count)
  chunk = max(chunk, 1)
  audio = np.concatenate([np.concatenate(list(request_lib.generate(pipeline, rows[i:i + chunk], decoding,
                                                                   progress=progress, on_step=on_step)), axis=-1)
                          for i in range(0, len(rows), chunk)])
  return choose(requests, count, audio, spec, pipeline.sample_rate)
