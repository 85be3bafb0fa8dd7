"""How well audio follows its text: scorers that rank candidates (best-of-N) and report prompt adherence.

A `Scorer` maps (texts [B], audio [B, C, N], sample rate) to [B] scores, higher = follows its text better; scores
compare candidates of one text, not texts with each other. `SCORERS` holds them by name: 'stats' (below) always;
a text-audio model (e.g. a CLAP score) registers itself here under its own name (`register`).

'stats' reads what the embedded default's captions say (`corpus.captions`) and checks it with the statistics that
tell contrasting prompts apart (`audio.stats`): busy words (drums, a groove, fast tempo words) ask for a high onset
rate and calm ones (pads, drones, slow tempo words) for a low one; low instruments (bass) for low-frequency energy
and a low spectral centroid, high ones (flute) for a high centroid. A text with none of these words scores 0.
"""
import re
from collections.abc import Callable, Sequence

import numpy as np

from magnet_jax.audio import stats
from magnet_jax.corpus.captions import INSTRUMENT_WORDS, PATTERN_WORDS, TEMPO_WORDS

Scorer = Callable[[Sequence[str | None], np.ndarray, int], np.ndarray]

BUSY = {'drum', 'drums', 'groove', 'beat', 'percussion', 'band', *TEMPO_WORDS['fast'],
        *(w for words in PATTERN_WORDS.values() for w in words)}
CALM = {'ambient', 'pad', 'pads', 'drone', 'calm', 'no drums', *TEMPO_WORDS['slow']}
LOW = {'bass', 'sub', 'low', 'dark'}
HIGH = {'flute', 'bright', 'high', 'airy'}
_CENTROID_REF_HZ = 1000.0  # log-centroid is measured from here (the corpus' bass and flute lie either side)


def _words(text: str) -> set[str]:
  words = set(re.findall(r"[a-z][a-z-]*", text.lower()))
  return words | ({'no drums'} if 'no drums' in text.lower() else set())


def expectations(text: str | None) -> dict[str, int]:
  """What a text asks of the audio: {'onsets': +1 busy / -1 calm / 0, 'low': +1 low / -1 high / 0}."""
  words = _words(text or '')
  calm = bool(words & CALM)
  busy = bool(words & BUSY) and 'no drums' not in words
  low, high = bool(words & LOW), bool(words & HIGH) or bool(words & set(INSTRUMENT_WORDS['flute']))
  return {'onsets': int(busy) - int(calm), 'low': int(low) - int(high)}


def stats_score(texts: Sequence[str | None], audio: np.ndarray, sample_rate: int) -> np.ndarray:
  """The 'stats' scorer: sum over what each text asks (`expectations`) of log(1 + onset rate) and, for low or
  high instruments, log(low-frequency ratio) and -log(centroid / 1 kHz), signed by the ask. Channels are averaged."""
  scores = []
  for text, clip in zip(texts, np.asarray(audio, np.float64), strict=True):
    mono = clip.mean(axis=0) if clip.ndim == 2 else clip
    ask = expectations(text)
    score = 0.0
    if ask['onsets']:
      score += ask['onsets'] * np.log1p(stats.onset_rate(mono, sample_rate))
    if ask['low']:
      low_ratio = max(stats.low_frequency_ratio(mono, sample_rate), 1e-9)
      centroid = max(stats.spectral_centroid(mono, sample_rate), 1.0)
      score += ask['low'] * (np.log(low_ratio) - np.log(centroid / _CENTROID_REF_HZ))
    scores.append(score)
  return np.asarray(scores, np.float64)


SCORERS: dict[str, Scorer] = {'stats': stats_score}


def register(name: str, scorer: Scorer) -> None:
  """Makes `scorer` available as `--best-of-scorer NAME` (e.g. a text-audio similarity)."""
  SCORERS[name] = scorer


def get(name: str) -> Scorer:
  if name not in SCORERS:
    raise ValueError(f'unknown scorer {name!r}; known: {sorted(SCORERS)}')
  return SCORERS[name]


def best(scores: np.ndarray) -> int:
  """The index of the highest score (the first among equals)."""
  return int(np.argmax(scores))
