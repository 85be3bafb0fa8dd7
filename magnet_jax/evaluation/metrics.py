"""The distribution metrics of audio generation: Fréchet distance (FAD), FAD-inf, per-clip FAD, the kernel audio
distance (KAD), KL of label distributions, CLAP score.

As audiocraft computes them (audiocraft/metrics/fad.py via Google's FAD, kld.py, clap_consistency.py):
  - FAD: the Fréchet distance between Gaussians fitted to the embeddings of the generated and the reference sets,
    in float64, with the usual guard for a singular covariance product (an eps offset on both diagonals).
  - KL: KL(reference || generated) of label distributions, per matched pair and averaged (audiocraft's kld_pq), or
    between the two sets' mean distributions when files are not paired.
  - CLAP score: the mean cosine similarity of each generation's audio embedding and its prompt's text embedding.
and as their authors' toolkits compute them: FAD-inf and per-clip FAD as fadtk (Gui et al. 2024), KAD as kadtk
(Chung et al. 2025).

Shapes: N embeddings, D embedding size, L labels.
"""
import dataclasses
import os
import zipfile
from collections.abc import Callable, Sequence

import numpy as np

from magnet_jax.io.files import atomic_write

_SQRTM_EPS = 1e-6  # the diagonal offset Google's FAD (and audiocraft) add when the product is singular
MAX_STATS_DIM = 8192  # D of reference statistics read from a file (sigma [D, D] float64: 512 MiB)
_NPY_HEADER = 4096  # bytes of an .npy member besides its data


@dataclasses.dataclass(frozen=True)
class EmbeddingStats:
  """A Gaussian fitted to N embeddings: mu [D], sigma [D, D] (float64), with the embedder that produced them."""
  mu: np.ndarray
  sigma: np.ndarray
  embedder: str  # the embedder's name and version, e.g. 'musicnn-MTT/1'
  count: int

  @classmethod
  def from_embeddings(cls, embeddings: np.ndarray, embedder: str) -> 'EmbeddingStats':
    """Fits [N, D] embeddings (N >= 2)."""
    x = check_embeddings(embeddings, 'FAD statistics')
    return cls(mu=x.mean(0), sigma=np.cov(x, rowvar=False), embedder=embedder, count=len(x))

  def save(self, path: str) -> None:
    """Writes an .npz (mu, sigma, embedder, count) atomically."""
    def write(tmp: str) -> None:
      with open(tmp, 'wb') as f:  # a file object: np.savez would append '.npz' to a bare temporary name
        np.savez(f, mu=self.mu, sigma=self.sigma, embedder=np.array(self.embedder), count=np.array(self.count))
    atomic_write(path, write)

  @classmethod
  def load(cls, path: str, embedder: str | None = None) -> 'EmbeddingStats':
    """Reads an .npz written by `save`; with `embedder`, checks that the statistics came from that embedder.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: not such an .npz, or statistics of another embedder.
    """
    if not os.path.isfile(path):
      raise FileNotFoundError(f'no reference statistics at {path}')
    # Sizes from the zip's headers before anything is inflated (zipfile reads no more than a member declares, so
    # a bomb cannot grow past them), then the embedder before the arrays.
    limits = {'embedder.npy': _NPY_HEADER + 4 * 1024, 'count.npy': _NPY_HEADER + 8,
              'mu.npy': _NPY_HEADER + 8 * MAX_STATS_DIM, 'sigma.npy': _NPY_HEADER + 8 * MAX_STATS_DIM ** 2}
    other = None
    try:
      with zipfile.ZipFile(path) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
      if set(sizes) != set(limits):
        raise ValueError(f'members {sorted(sizes)}, expected {sorted(limits)}')
      for name, size in sizes.items():
        if size > limits[name]:
          raise ValueError(f'{name} declares {size} bytes, at most {limits[name]} (D <= {MAX_STATS_DIM})')
      with np.load(path, allow_pickle=False) as data:
        name = data['embedder']
        if name.shape != () or name.dtype.kind != 'U':
          raise ValueError(f'embedder must be a string, got {name.dtype} {name.shape}')
        if embedder is not None and str(name) != embedder:
          other = str(name)
          raise ValueError(other)  # the arrays are not read
        count = data['count']
        if count.shape != () or count.dtype.kind not in 'iu' or count < 2:
          raise ValueError(f'count must be one integer >= 2, got {count.dtype} {count.shape}')
        stats = cls(mu=data['mu'].astype(np.float64), sigma=data['sigma'].astype(np.float64),
                    embedder=str(name), count=int(count))
      dim = stats.mu.shape[0] if stats.mu.ndim == 1 else None
      if dim is None or stats.sigma.shape != (dim, dim):
        raise ValueError(f'mu must be [D] and sigma [D, D], got {stats.mu.shape} and {stats.sigma.shape}')
      if not (np.isfinite(stats.mu).all() and np.isfinite(stats.sigma).all()):
        raise ValueError('mu or sigma holds NaN or inf')
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
      if other is not None:
        raise ValueError(f'reference statistics {path} were computed with embedder {other!r}, this run uses '
                         f'{embedder!r}') from None
      raise ValueError(f'{path} is not a reference statistics .npz (mu, sigma, embedder, count): {e}') from e
    return stats


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
  """||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)) in float64.

  When the product's square root is not finite (a singular product), eps = 1e-6 is added to both diagonals, and
  the real part of the square root is kept (imaginary parts are numerical noise), as Google's FAD does.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f'statistics of different sizes: mu {mu1.shape} vs {mu2.shape}, '
                     f'sigma {sigma1.shape} vs {sigma2.shape}')
  import scipy.linalg  # here, not at the top: every command imports this module (the best-of scorers); few need it
  diff = mu1 - mu2
  covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
  if not np.isfinite(covmean).all():
    offset = np.eye(len(sigma1)) * _SQRTM_EPS
    covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  covmean = np.real(covmean)
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fad(generated: EmbeddingStats, reference: EmbeddingStats) -> float:
  """The Fréchet audio distance between two sets' statistics (of the same embedder)."""
  if generated.embedder != reference.embedder:
    raise ValueError(f'statistics of different embedders: {generated.embedder!r} vs {reference.embedder!r}')
  return frechet_distance(generated.mu, generated.sigma, reference.mu, reference.sigma)


def kl_divergence(reference: np.ndarray, generated: np.ndarray, eps: float = 1e-6) -> np.ndarray:
  """KL(reference || generated) of [..., L] probability distributions -> [...] (audiocraft's kl_divergence).

  sum_l r_l (log r_l - log(g_l + eps)), with 0 log 0 = 0.
  """
  r, g = np.asarray(reference, np.float64), np.asarray(generated, np.float64)
  if r.shape != g.shape:
    raise ValueError(f'label distributions of different shapes: {r.shape} vs {g.shape}')
  return np.sum(np.where(r > 0, r * (np.log(np.where(r > 0, r, 1.0)) - np.log(g + eps)), 0.0), axis=-1)


def clap_similarities(audio_embeddings: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
  """[N] cosine similarity of paired [N, D] audio and text embeddings."""
  a, t = np.asarray(audio_embeddings, np.float64), np.asarray(text_embeddings, np.float64)
  if a.shape != t.shape or a.ndim != 2 or not len(a):
    raise ValueError(f'CLAP score needs paired [N, D] embeddings, got {a.shape} and {t.shape}')
  return np.sum(a * t, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(t, axis=-1), 1e-8)


def clap_score(audio_embeddings: np.ndarray, text_embeddings: np.ndarray) -> float:
  """The mean cosine similarity of paired [N, D] audio and text embeddings (audiocraft's clap_consistency)."""
  return float(np.mean(clap_similarities(audio_embeddings, text_embeddings)))


def check_embeddings(embeddings: np.ndarray, what: str, minimum: int = 2) -> np.ndarray:
  """[N, D] float64 embeddings, checked.

  Raises:
    ValueError: not [N, D], fewer than `minimum` rows, or a value that is not finite (naming `what`).
  """
  x = np.asarray(embeddings, np.float64)
  if x.ndim != 2 or len(x) < minimum:
    raise ValueError(f'{what}: need at least {minimum} embeddings of shape [N, D], got shape {x.shape}')
  if not np.isfinite(x).all():
    raise ValueError(f'{what}: {int(np.sum(~np.isfinite(x).all(-1)))} of {len(x)} embeddings are not finite')
  return x


KAD_SCALE = 100.0  # kadtk's SCALE_FACTOR (kadtk/kad.py; 1000 before its commit "fix scale value", Feb 2025)
_KAD_EPS = 1e-8    # kadtk's eps in gamma = 1 / (2 h^2 + eps)


def median_pairwise_distance(x: np.ndarray) -> float:
  """The median Euclidean distance over the N (N - 1) / 2 distinct pairs of [N, D] embeddings (kadtk's bandwidth)."""
  x = np.asarray(x, np.float64)
  sq = np.sum(x * x, -1)
  d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
  upper = d2[np.triu_indices(len(x), k=1)]
  return float(np.median(np.sqrt(np.maximum(upper, 0.0))))


def _gaussian_gram(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
  d2 = np.sum(a * a, -1)[:, None] + np.sum(b * b, -1)[None, :] - 2.0 * a @ b.T
  return np.exp(-gamma * d2)


def kernel_audio_distance(generated: np.ndarray, reference: np.ndarray, bandwidth: float | None = None,
                          scale: float = KAD_SCALE) -> float:
  """KAD (Chung et al. 2025, arXiv 2502.15602; kadtk): the unbiased estimate of the squared MMD between [M, D]
  generated and [N, D] reference embeddings under a Gaussian RBF kernel exp(-|x - y|^2 / (2 h^2)), times `scale`.

  h is the median pairwise distance of the reference set (the paper's and kadtk's README: the score keeps one meaning
  whatever set is evaluated) unless `bandwidth` is given. Unbiased: the diagonals of the within-set kernel matrices
  are left out, so KAD can be slightly negative when the sets are close. In float64 (kadtk: float32).

  Raises:
    ValueError: fewer than 2 embeddings in a set, sets of different widths, non-finite values, bandwidth <= 0.
  """
  m = len(generated)
  return kad_of_counts(generated, np.arange(m), reference, bandwidth, scale)(np.ones(m, np.int64))


class FrechetToReference:
  """The Fréchet distance of many Gaussians to one reference, fast: with R = sigma_ref^(1/2) computed once,
  tr (sigma sigma_ref)^(1/2) = sum of the square roots of the eigenvalues of R sigma R (similar matrices, and R sigma R
  is symmetric PSD), so each distance costs one symmetric eigendecomposition instead of a general sqrtm. Equal to
  `frechet_distance` up to float64 round-off when the product's square root is finite (bootstrap draws use it)."""

  def __init__(self, reference: EmbeddingStats):
    self.mu = np.asarray(reference.mu, np.float64)
    w, v = np.linalg.eigh(np.asarray(reference.sigma, np.float64))
    self.root = (v * np.sqrt(np.maximum(w, 0.0))) @ v.T
    self.trace = float(np.trace(reference.sigma))

  def __call__(self, mu: np.ndarray, sigma: np.ndarray) -> float:
    diff = mu - self.mu
    eig = np.linalg.eigvalsh(self.root @ sigma @ self.root)
    return float(diff @ diff + np.trace(sigma) + self.trace - 2.0 * np.sum(np.sqrt(np.maximum(eig, 0.0))))


def weighted_stats(x: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mu [D], sigma [D, D]) of [P, D] rows repeated `weights` [P] times (integer counts; np.cov's ddof 1), as if the
  repeated rows were stacked: a bootstrap draw's statistics without building it."""
  total = weights.sum()
  mu = weights @ x / total
  centred = x - mu
  return mu, (centred.T * weights) @ centred / (total - 1)


@dataclasses.dataclass(frozen=True)
class FadInf:
  """FAD-infinity (Gui et al. 2024, fadtk): the intercept of FAD against 1/n over subsets of n embeddings."""
  value: float                     # the intercept: FAD extrapolated to infinitely many embeddings
  slope: float
  r2: float                        # of the linear fit
  points: list[tuple[int, float]]  # (n, FAD of a subset of n embeddings drawn with replacement)


def fad_inf(generated: np.ndarray, reference: EmbeddingStats, steps: int = 25, min_n: int | None = None,
            seed: int = 0, distance: Callable[[np.ndarray, np.ndarray], float] | None = None) -> FadInf:
  """fadtk's `score_inf` (fadtk/fad.py): for n in int(linspace(min_n, P, steps)), draw n of the [P, D] generated
  embeddings with replacement (np.random.RandomState(seed).choice, in that order), fit a Gaussian, FAD to the
  reference; a least-squares line of FAD against 1/n; its intercept is FAD-inf, its R^2 says how well the line fits.

  min_n: fadtk's 500, or P // 2 when the set has fewer than 1000 embeddings (fadtk would draw more than the set holds).
  distance: (mu, sigma) -> FAD to the reference (default `frechet_distance`, as fadtk; bootstrap draws pass the
    faster `FrechetToReference`).

  Raises:
    ValueError: fewer than 4 embeddings, non-finite ones, steps < 2, or min_n outside [2, P].
  """
  x = check_embeddings(generated, 'FAD-inf generated set', minimum=4)
  min_n = min(500, len(x) // 2) if min_n is None else min_n
  if steps < 2 or not 2 <= min_n <= len(x):
    raise ValueError(f'FAD-inf needs steps >= 2 and 2 <= min_n <= {len(x)} embeddings, got steps={steps}, '
                     f'min_n={min_n}')
  rng = np.random.RandomState(seed)  # fadtk draws with the global legacy generator: the same stream when seeded
  ns = [int(n) for n in np.linspace(min_n, len(x), steps)]
  points = []
  for n in ns:
    sample = x[rng.choice(len(x), size=n, replace=True)]
    mu, sigma = sample.mean(0), np.cov(sample, rowvar=False)
    points.append((n, distance(mu, sigma) if distance else frechet_distance(reference.mu, reference.sigma, mu, sigma)))
  xs, ys = 1.0 / np.array(ns), np.array([p[1] for p in points])
  slope, intercept = np.polyfit(xs, ys, 1)
  r2 = 1.0 - np.sum((ys - (slope * xs + intercept)) ** 2) / np.sum((ys - ys.mean()) ** 2)
  return FadInf(float(intercept), float(slope), float(r2), points)


def fad_per_clip(clips: Sequence[tuple[str, np.ndarray]], reference: EmbeddingStats) -> list[tuple[str, float]]:
  """fadtk's `--indiv` (`score_individual`): each clip's FAD to the reference, its own [P_i, D] embeddings fitted
  alone, sorted from the worst (largest); clips with fewer than 2 embeddings are left out (fadtk logs an error).

  Raises:
    ValueError: no clip has 2 embeddings, or non-finite embeddings.
  """
  scores = []
  for name, x in clips:
    if len(x) >= 2:
      x = check_embeddings(x, f'per-clip FAD of {name}')
      scores.append((name, frechet_distance(x.mean(0), np.cov(x, rowvar=False), reference.mu, reference.sigma)))
  if not scores:
    raise ValueError(f'per-clip FAD needs clips of at least 2 embeddings; none of the {len(clips)} has')
  return sorted(scores, key=lambda item: -abs(item[1]))


# Each metric as a function of how often each of N clips is drawn (counts [N]; ones: the set itself), for
# `bootstrap`. Embeddings are [P, D] rows with owner [P], the clip index of each row; a drawn clip brings its rows.
def fad_of_counts(embeddings: np.ndarray, owner: np.ndarray, reference: EmbeddingStats):
  x = check_embeddings(embeddings, 'FAD generated set')
  to_reference = FrechetToReference(reference)
  return lambda counts: to_reference(*weighted_stats(x, counts[owner]))


def kad_of_counts(embeddings: np.ndarray, owner: np.ndarray, reference: np.ndarray, bandwidth: float | None = None,
                  scale: float = KAD_SCALE):
  """`kernel_audio_distance` of a draw, from the Gram matrices of the whole sets (computed once): with w the
  rows' counts, the generated set's within-set mean is (w K w - w diag K) / (m (m - 1)), m = sum w, exactly what the
  stacked draw (repeated rows at distinct positions) gives."""
  x = check_embeddings(embeddings, 'KAD generated set')
  y = check_embeddings(reference, 'KAD reference set')
  if x.shape[1] != y.shape[1]:
    raise ValueError(f'KAD: embeddings of different sizes, {x.shape[1]} (generated) vs {y.shape[1]} (reference)')
  h = median_pairwise_distance(y) if bandwidth is None else float(bandwidth)
  if not h > 0:
    raise ValueError(f'KAD: the kernel bandwidth must be > 0, got {h} (a reference set of identical embeddings?)')
  gamma = 1.0 / (2.0 * h * h + _KAD_EPS)
  gram = _gaussian_gram(x, x, gamma)
  diagonal = np.diag(gram).copy()
  cross = _gaussian_gram(x, y, gamma).mean(1)
  k_yy = _gaussian_gram(y, y, gamma)
  within_y = (k_yy.sum() - np.trace(k_yy)) / (len(y) * (len(y) - 1))

  def statistic(counts: np.ndarray) -> float:
    w = counts[owner].astype(np.float64)
    m = w.sum()
    within_x = (w @ gram @ w - w @ diagonal) / (m * (m - 1))
    return float(scale * (within_x + within_y - 2.0 * (w @ cross) / m))
  return statistic


def fad_inf_of_counts(embeddings: np.ndarray, owner: np.ndarray, reference: EmbeddingStats, seed: int = 0):
  """`fad_inf` (its default subsets, `seed`) of a draw: the drawn clips' rows stacked, each clip as often as it is
  drawn; counts of ones give `fad_inf` of the set itself (to float64 round-off: its FADs are `FrechetToReference`'s).
  Each draw fits 25 subsets, so a draw costs 25 FADs."""
  x = check_embeddings(embeddings, 'FAD-inf generated set', minimum=4)
  rows, to_reference = np.arange(len(x)), FrechetToReference(reference)
  return lambda counts: fad_inf(x[np.repeat(rows, counts[owner])], reference, seed=seed, distance=to_reference).value


def mean_of_counts(values: np.ndarray):
  """The mean of per-clip values [N] (paired KL, CLAP cosines) over a draw; NaN marks a clip without a value (a
  generated clip without a reference, a clip without text), left out (a draw of none of the others gives NaN)."""
  values = np.asarray(values, np.float64)
  valid = np.isfinite(values)
  if not valid.any():
    raise ValueError(f'no clip of {len(values)} has a value to average')
  values = values[valid]
  def statistic(counts: np.ndarray) -> float:
    counts = counts[valid]
    return float(counts @ values / counts.sum()) if counts.sum() else float('nan')
  return statistic
