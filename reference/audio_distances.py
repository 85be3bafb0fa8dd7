"""The authors' FAD-inf, per-clip FAD and KAD, for parity tests of magnet_jax/evaluation/metrics.py.

fadtk 1.1.0 (Gui et al., "Adapting Frechet Audio Distance for Generative Music Evaluation", ICASSP 2024; MIT
licence; PyPI fadtk, fadtk/fad.py) and kadtk 1.1.0 (Chung et al., "KAD: No More FAD!", arXiv 2502.15602; MIT
licence, (c) 2025 yoonjinxd; PyPI kadtk, kadtk/kad.py). Neither package imports here: both pull torchaudio,
hypy_utils and every embedding model's package at import time. So the functions below are their code, ported line
for line with only the file and caching plumbing removed (`calc_frechet_distance` without its logging,
`score_inf` and `score_individual` on arrays instead of folders of cached embeddings, `calc_kernel_audio_distance`
without its cache directories, its block for one set's within-set kernel mean, written out twice there, as one
helper). Numbers, dtypes (kadtk: torch float32), random draws (np.random's global
generator) and formulas are theirs.
"""
import numpy as np
import torch
from numpy.lib.scimath import sqrt as scisqrt
from scipy import linalg

KAD_SCALE_FACTOR = 100  # kadtk/kad.py SCALE_FACTOR


# --- fadtk/fad.py ---
def calc_embd_statistics(embd_lst):
  assert embd_lst.shape[0] >= 2
  return np.mean(embd_lst, axis=0), np.cov(embd_lst, rowvar=False)


def calc_frechet_distance(mu1, cov1, mu2, cov2, eps=1e-6):
  mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
  cov1, cov2 = np.atleast_2d(cov1), np.atleast_2d(cov2)
  diff = mu1 - mu2
  # eigenvalue method (fadtk's workaround for sqrtm in newer scipy)
  d, v = linalg.eig(cov1.dot(cov2))
  covmean = (v * scisqrt(d)) @ linalg.inv(v)
  if not np.isfinite(covmean).all():
    offset = np.eye(cov1.shape[0]) * eps
    covmean = linalg.sqrtm((cov1 + offset).dot(cov2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f'Imaginary component {np.max(np.abs(covmean.imag))}')
    covmean = covmean.real
  return diff.dot(diff) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean)


def score_inf(mu_base, cov_base, embeds, steps=25, min_n=500):
  """FrechetAudioDistance.score_inf on an [P, D] array: (intercept, slope, r2, points)."""
  max_n = len(embeds)
  ns = [int(n) for n in np.linspace(min_n, max_n, steps)]
  results = []
  for n in ns:
    indices = np.random.choice(embeds.shape[0], size=n, replace=True)
    embds_eval = embeds[indices]
    mu_eval, cov_eval = calc_embd_statistics(embds_eval)
    fad_score = calc_frechet_distance(mu_base, cov_base, mu_eval, cov_eval)
    results.append([n, fad_score])
  ys = np.array(results)
  xs = 1 / np.array(ns)
  slope, intercept = np.polyfit(xs, ys[:, 1], 1)
  r2 = 1 - np.sum((ys[:, 1] - (slope * xs + intercept)) ** 2) / np.sum((ys[:, 1] - np.mean(ys[:, 1])) ** 2)
  return intercept, slope, r2, results


def score_individual(mu, cov, files):
  """FrechetAudioDistance.score_individual on [(name, [P_i, D])]: [(name, score)] sorted by |score|, ascending."""
  pairs = []
  for name, embd in files:
    try:
      mu_eval, cov_eval = calc_embd_statistics(embd)
      pairs.append((name, calc_frechet_distance(mu, cov, mu_eval, cov_eval)))
    except AssertionError:  # fadtk logs the error and leaves the file out
      pass
  return sorted(pairs, key=lambda x: np.abs(x[1]))


# --- kadtk/kad.py ---
def median_pairwise_distance(x):
  x = torch.as_tensor(x, dtype=torch.float32)
  return torch.median(torch.pdist(x)).item()


def _within_mean(z, kernel):
  """(squared norms, the kernel mean over distinct pairs) of one set, as kadtk computes it for x and for y."""
  zz = z @ z.T
  sqnorms = torch.diagonal(zz)
  d2 = sqnorms.unsqueeze(1) + sqnorms.unsqueeze(0) - 2 * zz
  k = kernel(d2)
  k = k - torch.diag(torch.diagonal(k))
  return sqnorms, k.sum() / (z.shape[0] * (z.shape[0] - 1))


def calc_kernel_audio_distance(x, y, device='cpu', bandwidth=None, precision=torch.float32, eps=1e-8):
  """kadtk's Gaussian-kernel KAD; the bandwidth is the median pairwise distance of `y` (its second argument)."""
  x = torch.as_tensor(x).to(dtype=precision, device=device)
  y = torch.as_tensor(y).to(dtype=precision, device=device)
  if bandwidth is None:
    bandwidth = median_pairwise_distance(y)
  gamma = 1 / (2 * bandwidth**2 + eps)
  def kernel(a):
    return torch.exp(-gamma * a)
  x_sqnorms, k_xx_mean = _within_mean(x, kernel)  # kadtk writes this block out for x and again for y
  y_sqnorms, k_yy_mean = _within_mean(y, kernel)
  xy = x @ y.T
  d2_xy = x_sqnorms.unsqueeze(1) + y_sqnorms.unsqueeze(0) - 2 * xy
  k_xy = kernel(d2_xy)
  k_xy_mean = k_xy.mean()
  result = k_xx_mean + k_yy_mean - 2 * k_xy_mean
  return result * KAD_SCALE_FACTOR
