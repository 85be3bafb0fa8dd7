"""Evaluation inputs under attack (issue 26): a reference-statistics .npz is sized from its zip headers before
anything is inflated (a zip bomb costs nothing), its embedder is checked before its arrays are read, its count must
be one integer and its statistics finite; MusicCaps CSVs that are not UTF-8 or hold a caption over csv's 128 KiB
field limit are one line naming the file."""
import csv
import tracemalloc
import zipfile

import numpy as np
import pytest

from magnet_jax.evaluation import musiccaps
from magnet_jax.evaluation.metrics import MAX_STATS_DIM, EmbeddingStats


def _npz(path, **arrays) -> str:
  np.savez(path, **arrays)
  return str(path)


def _bomb(path, embedder: str) -> str:
  """A small .npz whose sigma.npy inflates to [D, D] float64 with D = MAX_STATS_DIM + 1 (about 512 MiB)."""
  dim = MAX_STATS_DIM + 1
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
    for name, array in {'mu': np.zeros(dim), 'embedder': np.array(embedder), 'count': np.array(10)}.items():
      with archive.open(f'{name}.npy', 'w') as f:
        np.lib.format.write_array(f, array)
    with archive.open('sigma.npy', 'w', force_zip64=True) as f:
      np.lib.format.write_array_header_1_0(f, {'descr': '<f8', 'fortran_order': False, 'shape': (dim, dim)})
      zeros = bytes(8 * dim * 64)
      for _ in range(dim // 64 + 1):
        f.write(zeros[:8 * dim * min(64, dim)])
  return str(path)


def test_a_zip_bomb_is_refused_from_its_headers(tmp_path):
  path = _bomb(tmp_path / 'bomb.npz', 'musicnn-MTT_musicnn/1')
  tracemalloc.start()
  with pytest.raises(ValueError, match=r'sigma.npy declares \d+ bytes, at most \d+ \(D <= 8192\)'):
    EmbeddingStats.load(path, embedder='musicnn-MTT_musicnn/1')
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  assert peak < 16 * 2 ** 20


def test_the_embedder_is_checked_before_the_arrays_and_values_are_checked(tmp_path):
  x = np.random.default_rng(0).normal(size=(10, 4))
  good = dict(mu=x.mean(0), sigma=np.cov(x, rowvar=False), embedder=np.array('e/1'))
  with pytest.raises(ValueError, match="computed with embedder 'e/1', this run uses 'vggish/1'"):
    EmbeddingStats.load(_npz(tmp_path / 'a.npz', **good, count=np.array(10)), embedder='vggish/1')
  cases = [({**good, 'count': np.array([10, 10])}, 'count must be one integer >= 2'),
           ({**good, 'count': np.array(10), 'mu': np.full(4, np.nan)}, 'mu or sigma holds NaN or inf'),
           ({**good, 'count': np.array(10), 'sigma': np.eye(3)}, r'mu must be \[D\] and sigma \[D, D\]'),
           ({**good, 'count': np.array(10), 'extra': np.zeros(1)}, 'members')]
  for arrays, message in cases:
    path = _npz(tmp_path / 'b.npz', **arrays)
    with pytest.raises(ValueError, match=message) as error:
      EmbeddingStats.load(path, embedder='e/1')
    assert str(error.value).startswith(f'{path} is not a reference statistics .npz')


def test_bad_musiccaps_csvs_are_one_line(tmp_path):
  (tmp_path / 'audio').mkdir()
  latin = tmp_path / 'latin.csv'
  latin.write_bytes('ytid,caption\nabc,caf\xe9 jazz\n'.encode('latin-1'))
  with pytest.raises(ValueError, match=r'latin.csv is not UTF-8 text \(byte \d+: invalid continuation byte\)'):
    musiccaps.read_captions(str(latin), str(tmp_path / 'audio'))
  huge = tmp_path / 'huge.csv'
  with open(huge, 'w', newline='') as f:
    csv.writer(f).writerows([['ytid', 'caption'], ['abc', 'x' * (128 * 1024 + 1)]])
  with pytest.raises(ValueError, match=r'huge.csv:\d+: field larger than field limit'):
    musiccaps.read_captions(str(huge), str(tmp_path / 'audio'))
