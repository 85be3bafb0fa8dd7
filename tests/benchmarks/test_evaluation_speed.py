"""Smoke test of `python -m benchmarks.evaluation_speed --quick`: musicnn (shipped) and the real-size VGGish with its
PyTorch original run end to end and the JSON / Markdown have the documented schema; bad flags are one-line errors.
Numbers are never asserted."""
import json
import subprocess
import sys

import pytest

from benchmarks import evaluation_speed

pytest.importorskip('torch')
COMMAND = [sys.executable, '-m', 'benchmarks.evaluation_speed']


def test_quick_run_schema(tmp_path):
  out = tmp_path / 'results' / 'speed.json'
  printed = subprocess.run([*COMMAND, '--quick', '--models=musicnn,vggish', '--nomusicnn-tf', f'--out={out}'],
                           check=True, capture_output=True, text=True, timeout=300).stdout
  results = json.loads(out.read_text())
  assert results['settings'] == {'models': ['musicnn', 'vggish'], 'clips': 2, 'clip_s': 2.0, 'repeats': 1,
                                 'originals': True}
  assert results['skipped'] == []
  musicnn_row, vggish_row = results['rows']
  for row in results['rows']:
    assert tuple(row) == evaluation_speed.ROW_KEYS
    assert row['jax_rate'] > 0 and row['jax_compile_s'] >= 0 and row['clips'] == 2
  assert musicnn_row['original'] is None and musicnn_row['ratio'] is None  # --nomusicnn-tf
  assert vggish_row['original_rate'] > 0 and vggish_row['ratio'] > 0
  assert vggish_row['params_m'] == vggish_row['original_params_m'] == pytest.approx(72.1, abs=0.1)
  assert '| vggish | torchvggish VGG | 72.14 |' in printed
  assert (tmp_path / 'results' / 'speed.md').read_text() in printed


@pytest.mark.parametrize('flag', ['--models=musicnn,wav2vec', '--clips=0'])
def test_bad_flags_fail_before_anything_runs(tmp_path, flag):
  done = subprocess.run([*COMMAND, flag, f'--out={tmp_path}/x.json'], capture_output=True, text=True, timeout=120)
  assert done.returncode != 0 and 'python -m benchmarks.evaluation_speed: error: flag --' in done.stderr
  assert not (tmp_path / 'x.json').exists()
