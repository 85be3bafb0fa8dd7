"""Bootstrap intervals and paired comparisons: seeded, covering what they should, rejecting bad settings."""
import numpy as np
import pytest

from magnet_jax.evaluation import bootstrap
from magnet_jax.evaluation.metrics import mean_of_counts


def test_seeded_draws_are_deterministic():
  values = np.random.default_rng(0).normal(size=40)
  first = bootstrap.interval(mean_of_counts(values), 40, draws=200, seed=3)
  assert first == bootstrap.interval(mean_of_counts(values), 40, draws=200, seed=3)
  assert first != bootstrap.interval(mean_of_counts(values), 40, draws=200, seed=4)
  np.testing.assert_array_equal(bootstrap.clip_counts(40, 5, 1), bootstrap.clip_counts(40, 5, 1))
  assert (bootstrap.clip_counts(40, 5, 1).sum(1) == 40).all()


def test_interval_of_a_mean_matches_its_standard_error():
  """For a mean of n normal values the 95% interval is ~ +-1.96 s / sqrt(n) around it, and about 95% of such
  intervals contain the true mean."""
  rng = np.random.default_rng(1)
  values = rng.normal(size=400)
  found = bootstrap.interval(mean_of_counts(values), 400, draws=2000, seed=0)
  half = 1.96 * values.std() / np.sqrt(400)
  assert found.value == pytest.approx(values.mean())
  assert (found.high - found.low) / 2 == pytest.approx(half, rel=0.1) and abs(found.shift) < 0.01
  covered = [bootstrap.interval(mean_of_counts(v), 50, draws=300, seed=i).low < 0 <
             bootstrap.interval(mean_of_counts(v), 50, draws=300, seed=i).high
             for i, v in enumerate(rng.normal(size=(60, 50)))]
  assert 0.85 <= np.mean(covered) <= 1.0


def test_paired_comparison():
  """The same values: difference 0, p = 1. A small shift on noisy but paired values is significant (the
  prompt-to-prompt spread cancels), while the two marginal intervals overlap."""
  rng = np.random.default_rng(2)
  prompts = rng.normal(scale=1.0, size=60)  # per-prompt difficulty, shared by both settings
  a, b = prompts + rng.normal(scale=0.05, size=60), prompts + 0.1 + rng.normal(scale=0.05, size=60)
  same = bootstrap.compare(mean_of_counts(a), mean_of_counts(a), 60, draws=300)
  assert (same.difference, same.p_value, same.significant) == (0.0, 1.0, False)
  found = bootstrap.compare(mean_of_counts(b), mean_of_counts(a), 60, draws=1000, seed=5)
  assert found.significant and found.p_value < 0.01 and found.low > 0 and found.difference == pytest.approx(
      np.mean(b - a))
  ia, ib = (bootstrap.interval(mean_of_counts(v), 60, draws=1000) for v in (a, b))
  assert ia.high > ib.low  # unpaired, they would not separate
  assert found.as_dict()['significant'] is True and set(found.as_dict()) >= {'p_value', 'draws', 'seed'}


def test_bad_settings_are_one_line():
  statistic = mean_of_counts(np.arange(5.0))
  with pytest.raises(ValueError, match=r'bootstrap draws must be in \[10, 100000\], got 5'):
    bootstrap.interval(statistic, 5, draws=5)
  with pytest.raises(ValueError, match=r'confidence level must be in \(0, 1\), got 1.5'):
    bootstrap.interval(statistic, 5, level=1.5)
  with pytest.raises(ValueError, match='a bootstrap needs at least 2 clips, got 1'):
    bootstrap.interval(mean_of_counts(np.ones(1)), 1)
  with pytest.raises(ValueError, match='every bootstrap draw of the metric was non-finite'):
    bootstrap.interval(lambda counts: float('nan'), 5, draws=10)
