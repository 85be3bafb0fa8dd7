"""Whether generations follow their prompts: audio statistics of captions that the corpus tells apart.

A `Contrast` names two captions and the statistic (a key of `audio.audio_stats`) that is higher for the first on
the procedural corpus: drum grooves have more onsets per second than pad drones, flutes a higher spectral centroid
than basses. `evaluate` generates each caption for several seeds in one batch; `separation` summarises how far
apart the two sides are (tests/apps/test_embedded.py asserts it on the shipped model).
"""
import dataclasses
from collections.abc import Sequence

import numpy as np

from magnet_jax.audio import audio_stats
from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation.pipeline import MagnetPipeline


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
