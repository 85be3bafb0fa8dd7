"""The quality report on synthetic measurements: every metric, its interval, the worst clips, paired comparisons."""
import numpy as np
import pytest

from magnet_jax.evaluation import quality
from magnet_jax.evaluation.metrics import EmbeddingStats, fad, kernel_audio_distance

METRICS = ('fad', 'kad', 'fad_inf', 'kl', 'clap')


def _embedded(seed: int, clips: int = 12, shift: float = 0.0, names=None) -> quality.Embedded:
  rng = np.random.default_rng(seed)
  owner = np.repeat(np.arange(clips), 3)
  embeddings = rng.normal(size=(3 * clips, 6)) + shift
  probs = rng.dirichlet(np.ones(5), size=clips)
  cosines = rng.uniform(0.1, 0.5, clips)
  cosines[0] = np.nan  # a clip without text
  return quality.Embedded(names or [f'c{i}' for i in range(clips)], embeddings, probs, 60.0, 'e/1', 'k/1',
                          owner=owner, clap_similarities=cosines,
                          clap={'model': 's/1', 'score': float(np.nanmean(cosines)), 'clips': clips - 1,
                                'without_text': 1})


def test_report_has_every_metric_with_its_interval():
  generated, reference = _embedded(0, shift=0.4), _embedded(1, clips=30)
  result = quality.report(generated, reference, METRICS, draws=200, seed=1)
  assert list(result['metrics']) == list(METRICS) and list(result['intervals']) == list(METRICS)
  assert result['metrics']['fad'] == pytest.approx(fad(generated.stats(), reference.stats()), abs=1e-4)
  assert result['metrics']['kad'] == pytest.approx(
      kernel_audio_distance(generated.embeddings, reference.embeddings), abs=1e-4)
  for name, found in result['intervals'].items():
    assert found['low'] <= result['metrics'][name] <= found['high'] and found['draws'] == 200, name
  assert result['models'] == {'fad': 'e/1', 'kad': 'e/1', 'fad_inf': 'e/1', 'kl': 'k/1', 'clap': 's/1'}
  assert result['fad_inf_fit']['subsets'] == 25 and len(result['fad_worst_clips']) == 10
  worst = result['fad_worst_clips']
  assert worst == sorted(worst, key=lambda c: -c['fad'])
  table = quality.markdown_table(result)
  assert table.startswith('| fad | kad | fad_inf | kl | clap | clips | skipped | fad model |')
  assert f"{result['metrics']['fad']:.4g} [" in table and '95% bootstrap intervals, 200 draws' in table
  assert 'Largest per-clip FAD: ' + worst[0]['clip'] in table
  assert quality.report(generated, reference, METRICS, draws=200, seed=1) == result  # seeded
  more = quality.report(generated, reference, ('fad', 'fad_inf'), draws=quality.FAD_INF_DRAWS + 50, seed=1)
  assert more['intervals']['fad_inf']['draws'] == quality.FAD_INF_DRAWS  # each of its draws fits 25 subsets
  assert f"draws of the generated clips, fad_inf {quality.FAD_INF_DRAWS} (" in quality.markdown_table(more)


def test_cached_statistics_give_fad_and_fad_inf_only():
  generated, reference = _embedded(0), _embedded(1, clips=30)
  stats = EmbeddingStats.from_embeddings(reference.embeddings, 'e/1')
  cached = quality.report(generated, stats, ('fad', 'fad_inf'), draws=50)
  assert cached['metrics'] == quality.report(generated, reference, ('fad', 'fad_inf'), draws=50)['metrics']
  with pytest.raises(ValueError, match="metrics kad and kl need a reference folder: cached statistics hold only"):
    quality.report(generated, stats, ('kad',))
  with pytest.raises(ValueError, match='need a reference'):
    quality.report(generated, None, ('fad', 'clap'))
  with pytest.raises(ValueError, match=r'bootstrap draws must be in \[10, 100000\], got 3'):
    quality.report(generated, reference, ('fad',), draws=3)


def test_paired_comparison_needs_the_same_clips():
  reference = _embedded(1, clips=30)
  a, b = _embedded(0), _embedded(0, shift=0.5)
  found = quality.compare(b, a, reference, ('fad', 'kad', 'kl'), draws=300)
  assert found['fad'].difference > 0 and found['fad'].significant and found['kl'].difference == 0.0
  with pytest.raises(ValueError, match='the same clips in the same order'):
    quality.compare(a, _embedded(0, names=[f'x{i}' for i in range(12)]), reference, ('fad',))


def test_subset_keeps_each_clips_embeddings():
  generated = _embedded(0)
  part = generated.subset(['c4', 'c1'])
  np.testing.assert_array_equal(part.embeddings, generated.embeddings[[12, 13, 14, 3, 4, 5]])
  assert list(part.owner) == [0, 0, 0, 1, 1, 1] and part.names == ['c4', 'c1']
  np.testing.assert_array_equal(part.label_probs, generated.label_probs[[4, 1]])


def test_non_finite_embeddings_are_one_line():
  generated, reference = _embedded(0), _embedded(1, clips=30)
  generated.embeddings[5, 2] = np.nan
  with pytest.raises(ValueError, match='KAD generated set: 1 of 36 embeddings are not finite'):
    quality.report(generated, reference, ('kad',))
