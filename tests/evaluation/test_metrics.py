"""FAD, KL and CLAP score against closed forms and their defining properties; KAD, FAD-inf and per-clip FAD against
the authors' kadtk and fadtk (reference/audio_distances.py) on the same embeddings."""
import numpy as np
import pytest

from magnet_jax.evaluation.metrics import (
  EmbeddingStats,
  clap_score,
  fad,
  fad_inf,
  fad_inf_of_counts,
  fad_of_counts,
  fad_per_clip,
  frechet_distance,
  kad_of_counts,
  kernel_audio_distance,
  kl_divergence,
  mean_of_counts,
  median_pairwise_distance,
)


def test_frechet_distance_closed_form_for_commuting_gaussians():
  """Diagonal covariances: ||mu1 - mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2."""
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
  s1, s2 = rng.uniform(0.1, 3, 8), rng.uniform(0.1, 3, 8)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
  assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_closed_form_for_general_gaussians():
  """tr(s1 + s2 - 2 (s1^(1/2) s2 s1^(1/2))^(1/2)) computed through eigendecompositions instead of sqrtm."""
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
  s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
  w, v = np.linalg.eigh(s1)
  root1 = v @ np.diag(np.sqrt(w)) @ v.T
  inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
  expected = np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))
  assert frechet_distance(np.zeros(6), s1, np.zeros(6), s2) == pytest.approx(expected, rel=1e-8)


def test_singular_covariances_take_the_eps_guard():
  """Rank-deficient statistics (fewer samples than dimensions) still give a finite, near-zero self distance."""
  x = np.random.default_rng(2).normal(size=(5, 16))
  stats = EmbeddingStats.from_embeddings(x, 'e/1')
  value = fad(stats, stats)
  assert np.isfinite(value) and abs(value) < 1e-3


def test_set_against_itself_is_zero_and_grows_with_noise():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12))
  ref = EmbeddingStats.from_embeddings(x, 'e/1')
  assert abs(fad(ref, ref)) < 1e-8
  noise = rng.normal(size=x.shape)
  distances = [fad(EmbeddingStats.from_embeddings(x + level * noise, 'e/1'), ref) for level in (0.1, 0.5, 1, 2, 4)]
  assert all(a < b for a, b in zip(distances, distances[1:], strict=False)), distances


def test_stats_roundtrip_and_bad_files(tmp_path):
  x = np.random.default_rng(4).normal(size=(10, 3))
  stats = EmbeddingStats.from_embeddings(x, 'musicnn-MTT_musicnn/1')
  path = str(tmp_path / 'ref.npz')
  stats.save(path)
  back = EmbeddingStats.load(path, embedder='musicnn-MTT_musicnn/1')
  np.testing.assert_array_equal(back.mu, stats.mu)
  np.testing.assert_array_equal(back.sigma, stats.sigma)
  assert (back.embedder, back.count) == (stats.embedder, 10)
  with pytest.raises(ValueError, match="computed with embedder 'musicnn-MTT_musicnn/1', this run uses 'vggish/1'"):
    EmbeddingStats.load(path, embedder='vggish/1')
  with pytest.raises(FileNotFoundError, match='no reference statistics at'):
    EmbeddingStats.load(str(tmp_path / 'missing.npz'))
  (tmp_path / 'bad.npz').write_bytes(b'not an npz')
  with pytest.raises(ValueError, match='is not a reference statistics .npz'):
    EmbeddingStats.load(str(tmp_path / 'bad.npz'))
  with pytest.raises(ValueError, match='at least 2 embeddings'):
    EmbeddingStats.from_embeddings(x[:1], 'e/1')


def test_kl_divergence():
  rng = np.random.default_rng(5)
  p = rng.dirichlet(np.ones(10), size=4)
  q = rng.dirichlet(np.ones(10), size=4)
  np.testing.assert_allclose(kl_divergence(p, p), 0.0, atol=1e-5)  # eps = 1e-6 inside the log
  expected = np.sum(p * np.log(p / q), axis=-1)
  np.testing.assert_allclose(kl_divergence(p, q), expected, rtol=1e-3)
  assert (kl_divergence(p, q) > 0).all()
  # audiocraft's kl_divergence(pred_probs=q, target_probs=p) (its module needs torchaudio; this is its body)
  torch = pytest.importorskip('torch')
  reference = torch.nn.functional.kl_div((torch.tensor(q) + 1e-6).log(), torch.tensor(p), reduction='none').sum(-1)
  np.testing.assert_allclose(kl_divergence(p, q), reference.numpy(), rtol=1e-6)


def test_clap_score():
  rng = np.random.default_rng(6)
  a = rng.normal(size=(5, 8))
  assert clap_score(a, 3 * a) == pytest.approx(1.0)
  assert clap_score(a, -a) == pytest.approx(-1.0)
  t = rng.normal(size=(5, 8))
  expected = np.mean([x @ y / np.linalg.norm(x) / np.linalg.norm(y) for x, y in zip(a, t, strict=True)])
  assert clap_score(a, t) == pytest.approx(expected)
  with pytest.raises(ValueError, match='paired'):
    clap_score(a, t[:3])


def _sets(seed=0, m=120, n=150, d=16, shift=0.3):
  rng = np.random.default_rng(seed)
  mix = rng.normal(size=(d, d)) / np.sqrt(d)
  return rng.normal(size=(m, d)) @ mix + shift, rng.normal(size=(n, d)) @ mix


def test_kad_matches_kadtk():
  """kadtk's own formula (reference/audio_distances.py): in float64 with its bandwidth, to 1e-9 relative; kadtk's
  default float32 arithmetic, to 2e-3 relative (three float32 kernel means of ~1 cancel to ~1e-3 x 100)."""
  import torch

  from reference import audio_distances as kadtk
  generated, reference = _sets()
  h = kadtk.median_pairwise_distance(reference)  # kadtk takes it from its second argument
  ours = kernel_audio_distance(generated, reference, bandwidth=h)
  theirs = float(kadtk.calc_kernel_audio_distance(generated, reference, bandwidth=h, precision=torch.float64))
  assert ours == pytest.approx(theirs, rel=1e-9)
  assert median_pairwise_distance(reference) == pytest.approx(h, rel=1e-6)
  assert kernel_audio_distance(generated, reference) == pytest.approx(
      float(kadtk.calc_kernel_audio_distance(generated, reference)), rel=2e-3)


def test_kad_is_unbiased_and_uses_the_reference_bandwidth():
  """Two samples of one distribution average ~0 (and some come out negative); a shift raises KAD; the bandwidth is
  the reference set's, so swapping the sets changes the score."""
  values = [kernel_audio_distance(*_sets(seed, shift=0.0)) for seed in range(20)]
  assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values)) and min(values) < 0
  generated, reference = _sets(shift=0.5)
  assert kernel_audio_distance(generated, reference) > max(values)
  assert kernel_audio_distance(generated, reference) != pytest.approx(kernel_audio_distance(reference, generated))


@pytest.mark.parametrize('bad, message', [
    (np.zeros((1, 16)), r'KAD generated set: need at least 2 embeddings of shape \[N, D\], got shape \(1, 16\)'),
    (np.zeros((0, 16)), r'need at least 2 embeddings'),
    (np.full((5, 16), np.nan), r'KAD generated set: 5 of 5 embeddings are not finite'),
    (np.zeros((5, 8)), r'KAD: embeddings of different sizes, 8 \(generated\) vs 16 \(reference\)')])
def test_kad_bad_input(bad, message):
  with pytest.raises(ValueError, match=message):
    kernel_audio_distance(bad, _sets()[1])
  with pytest.raises(ValueError, match='bandwidth must be > 0'):
    kernel_audio_distance(_sets()[0], np.ones((4, 16)))


def test_fad_inf_matches_fadtk():
  """fadtk's score_inf with np.random seeded as ours: the same subsets, so intercept, slope and R^2 to 1e-8."""
  from reference import audio_distances as fadtk
  generated, reference = _sets(m=400, d=8)
  stats = EmbeddingStats.from_embeddings(reference, 'e/1')
  np.random.seed(7)
  intercept, slope, r2, points = fadtk.score_inf(stats.mu, stats.sigma, generated, steps=10, min_n=100)
  ours = fad_inf(generated, stats, steps=10, min_n=100, seed=7)
  assert [n for n, _ in ours.points] == [n for n, _ in points]
  np.testing.assert_allclose([v for _, v in ours.points], [v for _, v in points], rtol=1e-8)
  assert (ours.value, ours.slope, ours.r2) == pytest.approx((intercept, slope, r2), rel=1e-8)
  # Same distribution, large reference: FAD's small-sample bias (~1 / n) is extrapolated away, near 0.
  same, big = _sets(seed=3, m=1000, n=20000, d=16, shift=0.0)
  big_stats = EmbeddingStats.from_embeddings(big, 'e/1')
  fit = fad_inf(same, big_stats, steps=10, min_n=200)
  assert abs(fit.value) < fit.points[0][1] / 4 and fit.slope > 0 and fit.r2 > 0.8
  with pytest.raises(ValueError, match=r'min_n <= 400'):
    fad_inf(generated, stats, min_n=500)
  with pytest.raises(ValueError, match='FAD-inf generated set: 1 of 400 embeddings are not finite'):
    fad_inf(np.where(np.arange(400)[:, None] == 3, np.inf, generated), stats)


def test_fad_per_clip_matches_fadtk_indiv():
  from reference import audio_distances as fadtk
  rng = np.random.default_rng(5)
  reference = EmbeddingStats.from_embeddings(rng.normal(size=(300, 6)), 'e/1')
  clips = [(f'c{i}', rng.normal(size=(30, 6)) * (1 + i / 4) + i / 10) for i in range(6)] + [('short', np.zeros((1, 6)))]
  theirs = fadtk.score_individual(reference.mu, reference.sigma, clips)
  ours = fad_per_clip(clips, reference)
  assert [n for n, _ in ours] == [n for n, _ in reversed(theirs)]  # worst first; fadtk sorts ascending
  np.testing.assert_allclose([v for _, v in ours], [v for _, v in reversed(theirs)], rtol=1e-8)
  with pytest.raises(ValueError, match='none of the 1 has'):
    fad_per_clip([('short', np.zeros((1, 6)))], reference)


def test_statistics_of_counts_equal_the_stacked_draw():
  """A bootstrap draw's FAD and KAD from weights equal the plain metrics on the draw's rows stacked with repeats."""
  generated, reference = _sets(m=60, d=6)
  owner = np.arange(60) // 3  # 20 clips of 3 rows
  counts = np.random.default_rng(1).multinomial(20, np.full(20, 0.05))
  rows = np.concatenate([np.flatnonzero(owner == c).repeat(1) for c in np.repeat(np.arange(20), counts)])
  stats = EmbeddingStats.from_embeddings(reference, 'e/1')
  drawn = EmbeddingStats.from_embeddings(generated[rows], 'e/1')
  assert fad_of_counts(generated, owner, stats)(counts) == pytest.approx(fad(drawn, stats), rel=1e-9)
  assert kad_of_counts(generated, owner, reference)(counts) == pytest.approx(
      kernel_audio_distance(generated[rows], reference), rel=1e-9)
  assert mean_of_counts(np.array([1.0, np.nan, 3.0]))(np.array([2, 5, 1])) == pytest.approx(5 / 3)
  # FAD-inf's subsets are drawn by row index, so the draw's rows are stacked in row order (each clip's rows repeated).
  fad_inf_of = fad_inf_of_counts(generated, owner, stats, seed=3)
  assert fad_inf_of(counts) == pytest.approx(fad_inf(generated[np.sort(rows)], stats, seed=3).value, rel=1e-9)
  assert fad_inf_of(np.ones(20, np.int64)) == pytest.approx(fad_inf(generated, stats, seed=3).value, rel=1e-9)
