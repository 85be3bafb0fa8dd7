"""FAD, KL and CLAP score against closed forms and their defining properties."""
import numpy as np
import pytest

from magnet_jax.evaluation.metrics import EmbeddingStats, clap_score, fad, frechet_distance, kl_divergence


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
