"""Smoke test of `python -m benchmarks.latency --quick`: the systems generate with the tiny model (a run whose
tokens have the wrong shape or range is skipped, so a row proves them right), the JSON has the documented schema.
Numbers are never asserted."""
import functools
import json
import subprocess
import sys

import jax
import pytest

from benchmarks.latency import report, spec
from magnet_jax.models.params import count_params, init_params

pytest.importorskip('torch')
# The systems the GPU dry run (tests/benchmarks/test_gpu.py) does not run; it runs audiocraft, ar-jax and magnet-jax
# on this same tiny case, and checks the table's ratio to audiocraft. audiocraft-compile: 10+ s of torch.compile.
SYSTEMS = ('magnet-jax', 'magnet-jax-loop')


def test_quick_run_schema(tmp_path):
  out = tmp_path / 'results' / 'quick.json'
  command = [sys.executable, '-m', 'benchmarks.latency', '--quick', f'--systems={",".join(SYSTEMS)}',
             f'--out={out}']
  printed = subprocess.run(command, check=True, capture_output=True, text=True, timeout=900).stdout
  results = json.loads(out.read_text())
  assert set(results['machine']) == {'cpu', 'gpu', 'jax', 'torch'}
  assert results['command'].startswith('python -m benchmarks.latency --quick')
  assert results['skipped'] == []
  assert [r['system'] for r in results['rows']] == list(SYSTEMS)
  for row in results['rows']:
    assert tuple(row) == report.ROW_KEYS
    assert (row['config'], row['duration_s'], row['batch'], row['cfg']) == ('tiny', 1.0, 1, True)
    assert row['latency_s_min'] <= row['latency_s_median'] <= row['latency_s_max']
    assert row['tokens_per_s'] > 0 and row['compile_s'] >= 0 and row['peak_mem_mb'] > 0
  assert results['checks'] == [{'case': 'tiny 1s b1 cfg=on', 'check': 'magnet-jax == magnet-jax-loop tokens',
                                'passed': True}]
  (train,) = results['train_rows']
  assert tuple(train) == report.TRAIN_KEYS and train['config'] == 'tiny' and 0 < train['mfu']
  assert '| magnet-jax | tiny |' in printed


@pytest.mark.parametrize('name', ['tiny', 'compute'])
def test_params_formula_matches_the_model(name):
  model = spec.model_config(name, gpu=False)
  shapes = jax.eval_shape(functools.partial(init_params, model), jax.random.key(0))
  assert round(spec.params_millions(model) * 1e6) == count_params(shapes)


def test_cpu_estimate_scales_with_the_model_width():
  # The estimate only decides what to skip, but it must not skip a real-size run that fits: magnet-small's 24
  # layers generating 1 s (3.6 TFLOPs with CFG) on 2 cores measuring 20 GFLOP/s take about 3 to 6 minutes a call.
  rate = 20e9
  small = spec.Group('small-24l', 1.0, 1, True, False)
  flops = spec.generate_flops(small, 'magnet-jax')
  assert 3e12 < flops < 4.5e12
  assert 0.5 * flops / rate <= spec.estimate_seconds(small, 'magnet-jax', rate) <= 15 * 60
  # Narrow models keep the pessimistic 12.5% (per-op overhead outweighs their matmuls).
  tiny = spec.Group('tiny', 1.0, 1, True, False)
  assert spec.estimate_seconds(tiny, 'magnet-jax', rate) == spec.generate_flops(tiny, 'magnet-jax') / (0.125 * rate)
