"""Bootstrap confidence intervals of set metrics, and paired comparisons of two settings on the same prompts.

  fad_of = clip_statistic('fad', generated, reference)           # a metric as a function of clip counts [N]
  interval(fad_of, len(generated.names), draws=1000, seed=0)    # Interval(value, low, high, ...)
  compare(fad_of_a, fad_of_b, n, draws=1000, seed=0)             # Comparison(difference, low, high, p_value, ...)

A draw resamples the generated clips with replacement (all the embeddings of a drawn clip come with it: the patches
of one clip are not independent samples), N clips out of N, as counts per clip [N] from one seeded generator; the
reference set is held fixed, so an interval says how much the number would move with another draw of prompts and
seeds from the same population, against this reference. A metric is evaluated on a draw without stacking its
repeated rows (weighted statistics, the same numbers).

Intervals are the draws' spread put around the full set's value v: [v + q(a/2) - m, v + q(1 - a/2) - m], with q the
quantiles of the draws' values and m their mean. Resampling with replacement repeats clips, and FAD and KAD, which
are biased by the number of distinct samples, come out higher on every draw (m - v is reported as `shift`; on a few
dozen clips it can exceed the spread, so that a percentile interval would not contain v, and the basic interval
2 v - q would describe an infinite set, not this one). Recentring keeps the question an interval should answer when
settings are compared at one clip count: how far the number moves with another draw of prompts of this size,
against this reference. For means (KL, CLAP) the shift is ~0 and this is the percentile interval.

A paired comparison draws the same clips (the same prompts and seeds) for both settings, so the prompt-to-prompt
spread cancels in their difference d = metric(a) - metric(b). Its interval is recentred in the same way, and its
two-sided p-value is that of the centred bootstrap test of d = 0 (Efron & Tibshirani 1993, sec. 16.4):
(1 + #{|d* - m| >= |d|}) / (1 + draws), m the draws' mean; significant when p < 1 - level (the interval then
excludes 0, up to the granularity of the draws).
"""
import dataclasses
from collections.abc import Callable

import numpy as np

Statistic = Callable[[np.ndarray], float]  # counts per clip [N] (ints summing to N) -> the metric of that draw

DRAWS = 1000   # default number of bootstrap draws
LEVEL = 0.95   # default confidence level
MAX_DRAWS = 100_000


@dataclasses.dataclass(frozen=True)
class Interval:
  """A metric on the full set and its bootstrap confidence interval."""
  value: float
  low: float
  high: float
  shift: float  # the draws' mean minus value (resampling's upward shift of FAD / KAD)
  level: float
  draws: int
  seed: int

  def as_dict(self, digits: int = 4) -> dict:
    return {'value': round(self.value, digits), 'low': round(self.low, digits), 'high': round(self.high, digits),
            'shift': round(self.shift, digits), 'level': self.level, 'draws': self.draws, 'seed': self.seed}

  def __str__(self) -> str:
    return f'{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]'


@dataclasses.dataclass(frozen=True)
class Comparison:
  """metric(a) - metric(b) on the same clips, its bootstrap interval and p-value."""
  difference: float
  low: float
  high: float
  p_value: float
  level: float
  draws: int
  seed: int

  @property
  def significant(self) -> bool:
    """p < 1 - level (the interval then excludes 0, up to the draws' granularity)."""
    return self.p_value < 1 - self.level

  def as_dict(self, digits: int = 4) -> dict:
    return {'difference': round(self.difference, digits), 'low': round(self.low, digits),
            'high': round(self.high, digits), 'p_value': round(self.p_value, 4), 'significant': self.significant,
            'level': self.level, 'draws': self.draws, 'seed': self.seed}


def check(draws: int, level: float) -> None:
  """Raises ValueError for a number of draws outside [10, MAX_DRAWS] or a level outside (0, 1)."""
  if not 10 <= draws <= MAX_DRAWS:
    raise ValueError(f'bootstrap draws must be in [10, {MAX_DRAWS}], got {draws}')
  if not 0 < level < 1:
    raise ValueError(f'bootstrap confidence level must be in (0, 1), got {level}')


def clip_counts(n: int, draws: int, seed: int) -> np.ndarray:
  """[draws, n] counts: how often each of n clips is drawn, n draws with replacement per row, seeded."""
  if n < 2:
    raise ValueError(f'a bootstrap needs at least 2 clips, got {n}')
  return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=draws)


def _spread(value: float, values: np.ndarray, level: float) -> tuple[float, float, float, np.ndarray]:
  """(low, high, shift, finite centred draws): the draws' quantiles recentred on `value`."""
  values = values[np.isfinite(values)]
  if not len(values):
    raise ValueError('every bootstrap draw of the metric was non-finite')
  centred = values - values.mean()
  low_q, high_q = np.quantile(centred, [(1 - level) / 2, (1 + level) / 2])
  return float(value + low_q), float(value + high_q), float(values.mean() - value), centred


def interval(statistic: Statistic, n: int, draws: int = DRAWS, seed: int = 0, level: float = LEVEL) -> Interval:
  """The metric on all n clips and its bootstrap interval over `draws` resamplings of the clips."""
  check(draws, level)
  value = statistic(np.ones(n, np.int64))
  values = np.array([statistic(c) for c in clip_counts(n, draws, seed)])
  return Interval(value, *_spread(value, values, level)[:3], level, draws, seed)


def compare(statistic_a: Statistic, statistic_b: Statistic, n: int, draws: int = DRAWS, seed: int = 0,
            level: float = LEVEL) -> Comparison:
  """metric(a) - metric(b) on the same n clips (clip i of a and of b: one prompt and seed), its bootstrap interval
  and centred two-sided p-value over `draws` paired resamplings."""
  check(draws, level)
  full = np.ones(n, np.int64)
  difference = statistic_a(full) - statistic_b(full)
  values = np.array([statistic_a(c) - statistic_b(c) for c in clip_counts(n, draws, seed)])
  low, high, _, centred = _spread(difference, values, level)
  p_value = (1 + np.sum(np.abs(centred) >= abs(difference))) / (1 + len(centred))
  return Comparison(difference, low, high, float(p_value), level, draws, seed)
