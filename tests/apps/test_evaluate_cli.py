"""python -m magnet_jax.apps.evaluate end to end on tiny folders, and its one-line errors."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from magnet_jax.corpus.writer import make_clip
from magnet_jax.evaluation import quality
from magnet_jax.evaluation.metrics import EmbeddingStats
from tests.helpers import REPO_ROOT


def _write_clips(folder, indices, rate=16000, seconds=3.2):
  os.makedirs(folder, exist_ok=True)
  for i in indices:
    soundfile.write(os.path.join(folder, f'clip_{i}.wav'), make_clip(0, i, rate, seconds).audio, rate)
  return str(folder)


def _run(*args):
  result = subprocess.run([sys.executable, '-m', 'magnet_jax.apps.evaluate', *args], capture_output=True, text=True,
                          cwd=REPO_ROOT)
  return result.returncode, result.stdout, result.stderr.strip().splitlines()


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
  root = tmp_path_factory.mktemp('eval')
  ref = _write_clips(root / 'ref', range(4))
  gen = _write_clips(root / 'gen', range(2, 6), rate=22050)  # another rate: resampled to 16 kHz; 2 names shared
  (root / 'gen' / 'broken.wav').write_bytes(b'RIFF nonsense')
  (root / 'empty').mkdir()
  return root, ref, gen


def test_end_to_end_report_and_cached_stats(folders):
  root, ref, gen = folders
  out = str(root / 'report.json')
  stats = str(root / 'ref.npz')
  code, stdout, stderr = _run(f'--generated={gen}', f'--reference={ref}', f'--out={out}',
                              f'--save_reference_stats={stats}', '--batch_size=8')
  assert code == 0, stderr
  report = json.load(open(out))
  assert report['generated_clips'] == 4 and report['generated_skipped'] == 1
  assert report['kl_mode'] == 'paired' and report['metrics']['kl'] >= 0 and report['metrics']['fad'] > 0
  assert '| fad | kl | clips | skipped |' in stdout and open(out[:-5] + '.md').read().startswith('| fad')
  # The cached statistics give the same FAD as the folder; a set against itself scores ~0 (FAD and paired KL).
  embedder = quality.MusicnnEmbedder(batch_size=8, progress=False)
  generated = quality.embed_folder(embedder, gen)
  cached = quality.report(generated, EmbeddingStats.load(stats, embedder.name), ('fad',))
  assert cached['metrics']['fad'] == pytest.approx(report['metrics']['fad'], abs=2e-4)
  itself = quality.report(generated, generated, ('fad', 'kl'))
  assert abs(itself['metrics']['fad']) < 1e-3 and abs(itself['metrics']['kl']) < 1e-3
  assert generated.embeddings.shape == (8, 200)  # 4 clips of 3.2 s: 2 patches each (one ends at the clip's end)
  np.testing.assert_allclose(generated.label_probs.sum(-1), 1.0, rtol=1e-5)


def test_bad_input_is_one_line(folders):
  root, _, _ = folders
  code, _, stderr = _run(f'--generated={root / "empty"}', f'--reference={root / "empty"}')
  assert code == 1 and 'Traceback' not in '\n'.join(stderr), stderr
  assert re.fullmatch(r'magnet_jax.apps.evaluate: error: no audio files \(.wav.*\) in .*empty', stderr[-1]), stderr


def test_bad_inputs(folders):
  """What the command reports as one line (ValueError / FileNotFoundError), checked in process."""
  root, _, gen = folders
  with pytest.raises(ValueError, match=r'no audio files \(.wav'):
    quality.list_audio(str(root / 'empty'))
  with pytest.raises(NotADirectoryError, match='no such folder'):
    quality.list_audio(str(root / 'missing'))
  with pytest.raises(FileNotFoundError, match='no reference statistics at'):
    EmbeddingStats.load(str(root / 'missing.npz'), quality.MusicnnEmbedder.name)
  with pytest.raises(ValueError, match=r"unknown metric\(s\) \['bleu'\]"):
    quality.check_metrics(['fad', 'bleu'])
  other = EmbeddingStats(np.zeros(200), np.eye(200), 'vggish/1', 2)
  other.save(str(root / 'other.npz'))
  with pytest.raises(ValueError, match="computed with embedder 'vggish/1', this run uses 'musicnn-MTT_musicnn/1'"):
    EmbeddingStats.load(str(root / 'other.npz'), quality.MusicnnEmbedder.name)
  embedded = quality.Embedded(['a', 'b'], np.zeros((3, 200)), np.full((2, 50), 0.02), 6.0, quality.musicnn.NAME)
  with pytest.raises(ValueError, match="computed with embedder 'vggish/1'"):
    quality.report(embedded, other, ('fad',))
  with pytest.raises(ValueError, match='kl needs a reference folder'):
    quality.report(embedded, embedded.stats(), ('kl',))
