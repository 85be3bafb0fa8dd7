"""The distribution metrics of audio generation: Fréchet distance (FAD), KL of label distributions, CLAP score.

As audiocraft computes them (audiocraft/metrics/fad.py via Google's FAD, kld.py, clap_consistency.py):
  - FAD: the Fréchet distance between Gaussians fitted to the embeddings of the generated and the reference sets,
    in float64, with the usual guard for a singular covariance product (an eps offset on both diagonals).
  - KL: KL(reference || generated) of label distributions, per matched pair and averaged (audiocraft's kld_pq), or
    between the two sets' mean distributions when files are not paired.
  - CLAP score: the mean cosine similarity of each generation's audio embedding and its prompt's text embedding.

Shapes: N embeddings, D embedding size, L labels.
"""
import dataclasses
import os
import zipfile

import numpy as np
import scipy.linalg

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
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or len(x) < 2:
      raise ValueError(f'FAD statistics need at least 2 embeddings of shape [N, D], got shape {x.shape}')
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


def clap_score(audio_embeddings: np.ndarray, text_embeddings: np.ndarray) -> float:
  """The mean cosine similarity of paired [N, D] audio and text embeddings (audiocraft's clap_consistency)."""
  a, t = np.asarray(audio_embeddings, np.float64), np.asarray(text_embeddings, np.float64)
  if a.shape != t.shape or a.ndim != 2 or not len(a):
    raise ValueError(f'CLAP score needs paired [N, D] embeddings, got {a.shape} and {t.shape}')
  cosine = np.sum(a * t, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(t, axis=-1), 1e-8)
  return float(np.mean(cosine))
