"""How well audio follows its text: scorers that rank candidates (best-of-N) and report prompt adherence.

A scorer (`generation.best_of.Scorer`) maps (texts [B], audio [B, C, N], sample rate) to [B] scores, higher =
follows its text better. Importing this module registers two in `generation.best_of.SCORERS`: 'stats' (below) and
'clap:FOLDER', the CLAP similarity of each clip to its text, with the CLAP model of a local transformers ClapModel
folder (`clap_scorer`).

'stats' reads what the embedded default's captions say (`corpus.captions`) and checks it with the statistics that
tell contrasting prompts apart (`audio.stats`): busy words (drums, a groove, fast tempo words) ask for a high onset
rate and calm ones (pads, drones, slow tempo words) for a low one; low instruments (bass) for low-frequency energy
and a low spectral centroid, high ones (flute) for a high centroid. A text with none of these words scores 0.

`CONTRASTS` pairs captions whose audio one statistic tells apart on the procedural corpus (drum grooves have more
onsets per second than pad drones, flutes a higher spectral centroid than basses); `evaluate` generates each for
several seeds in one batch and `separation` summarises how far apart the two sides are
(tests/training/test_default_model.py asserts it on the shipped model).
"""
import dataclasses
import functools
import re
from collections.abc import Sequence

import numpy as np

from magnet_jax.audio import audio_stats, stats
from magnet_jax.audio.convert import convert
from magnet_jax.corpus.captions import INSTRUMENT_WORDS, PATTERN_WORDS, TEMPO_WORDS
from magnet_jax.decoding import DecodingConfig
from magnet_jax.evaluation import clap
from magnet_jax.generation import best_of
from magnet_jax.generation.best_of import Scorer
from magnet_jax.generation.pipeline import MagnetPipeline

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


@functools.cache
def clap_scorer(folder: str) -> Scorer:
  """The CLAP scorer of a ClapModel folder (loaded once): the cosine of each clip's CLAP embedding (channels
  averaged, resampled to 48 kHz) and its text's; a clip without text scores 0.

  Raises:
    FileNotFoundError, CheckpointError, ValueError: as `clap.ClapScorer` (no such folder, no weights, a fused model).
  """
  model = clap.ClapScorer(folder, progress=False)

  def score(texts: Sequence[str | None], audio: np.ndarray, sample_rate: int) -> np.ndarray:
    clips = [(str(i), convert(np.asarray(clip), sample_rate, model.sample_rate, 1)[0])
             for i, clip in enumerate(audio)]
    cosine = np.sum(model.embed_audio(clips) * model.embed_text([text or '' for text in texts]), axis=-1)
    return np.where([text is not None for text in texts], cosine, 0.0)

  return score


def _clap(folder: str | None) -> Scorer:
  if folder is None:
    raise ValueError('the clap scorer needs a local CLAP model folder: clap:FOLDER')
  return clap_scorer(folder)


best_of.register('stats', lambda _: stats_score)
best_of.register('clap', _clap)


@dataclasses.dataclass(frozen=True)
class Contrast:
  """Two captions whose generated audio one statistic (a key of `audio.audio_stats`) tells apart: it is higher
  for `high` than for `low`, as it is on the corpus clips they describe."""
  statistic: str
  high: str
  low: str


CONTRASTS = (
    Contrast('onset_rate', 'fast drum groove with bass at 140 bpm', 'ambient pad drone in D major, no drums'),
    Contrast('centroid_hz', 'solo flute in G major', 'slow solo bass in E minor'),
)


def contrast_captions() -> list[str]:
  """Every caption of `CONTRASTS`, high then low."""
  return [caption for c in CONTRASTS for caption in (c.high, c.low)]


def evaluate(pipeline: MagnetPipeline, seeds: Sequence[int] = (0, 1, 2, 3), duration: float | None = None,
             decoding: DecodingConfig | None = None) -> tuple[np.ndarray, dict[str, list[dict[str, float]]]]:
  """Generates every contrast caption for every seed in one batched call.

  Args:
    pipeline: the model.
    seeds: one generation per caption and seed.
    duration: seconds (default: the pipeline's).
    decoding: the decoding config (default: the pipeline's).

  Returns:
    (audio [captions * seeds, C, N], caption-major; {caption: [`audio.audio_stats` of each seed's audio]}).
  """
  captions = contrast_captions()
  audio = pipeline.generate([c for c in captions for _ in seeds], duration, seed=[s for _ in captions for s in seeds],
                            decoding=decoding)
  clips = audio.mean(axis=1).reshape(len(captions), len(seeds), -1)
  return audio, {c: [audio_stats(clip, pipeline.sample_rate) for clip in per_seed]
                 for c, per_seed in zip(captions, clips, strict=True)}


def separation(stats: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
  """Per contrast statistic: the median and extreme values of its high and low captions over the seeds."""
  summary = {}
  for c in CONTRASTS:
    high = [s[c.statistic] for s in stats[c.high]]
    low = [s[c.statistic] for s in stats[c.low]]
    summary[c.statistic] = {'high_median': float(np.median(high)), 'low_median': float(np.median(low)),
                            'high_min': float(np.min(high)), 'low_max': float(np.max(low))}
  return summary
