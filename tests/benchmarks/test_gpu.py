"""The prepared GPU benchmark (`benchmarks/gpu.sh`, `python -m benchmarks.latency --gpu`): its CPU dry run end to
end, so that the script cannot rot while no GPU is around, and the time budget that keeps it within 8 minutes.
Numbers are never asserted."""
import json
import os
import subprocess
import sys
import time

import pytest

from benchmarks.latency import report, runner, spec

pytest.importorskip('torch')


def test_dry_run(tmp_path):
  env = dict(os.environ, PYTHON=sys.executable)
  printed = subprocess.run(['benchmarks/gpu.sh', 'dry-run', str(tmp_path)], check=True, capture_output=True,
                           text=True, timeout=900, env=env).stdout
  results = json.loads((tmp_path / 'results.json').read_text())
  assert results['command'] == f'python -m benchmarks.latency --gpu --dry-run --out={tmp_path}/results.json'
  assert results['skipped'] == []
  _, batch, systems = spec.GPU_PLAN[0]
  assert [r['system'] for r in results['rows']] == list(systems)
  for row in results['rows']:
    assert tuple(row) == report.ROW_KEYS
    assert (row['config'], row['duration_s'], row['batch'], row['warm_runs']) == ('tiny', 1.0, batch, 1)
    assert row['samples_per_s'] > 0 and row['peak_mem_mb'] > 0
  assert results['profile'] == {'case': 'tiny 1s b1 cfg=on', 'folder': str(tmp_path / 'profile')}
  traces = [f for _, _, files in os.walk(tmp_path / 'profile') for f in files if f.endswith('.xplane.pb')]
  assert len(traces) == 1
  assert '| magnet-jax-fp32 | tiny |' in (tmp_path / 'results.md').read_text()
  assert 'x audiocraft' in printed  # each row's ratio to audiocraft


def test_gpu_plan_puts_the_targets_first():
  groups = runner.Settings(configs=('small',), plan=spec.GPU_PLAN).groups(gpu=True)
  (first, systems), (second, _) = groups[:2]
  assert (first.duration_s, first.batch, first.model.num_layers, first.model.dtype) == (10.0, 1, 24, 'bfloat16')
  assert systems[:3] == ('magnet-jax', 'audiocraft', 'ar-jax') and second.batch == 64
  assert spec.system_model(first, 'magnet-jax-fp32').dtype == 'float32'


class _Progress:
  def update(self, n):
    pass


def test_cases_past_the_deadline_are_skipped():
  machine = {'matmul_flops': 500e12, 'memory_bytes': 140 * 2**30, 'gpu': 'NVIDIA H200'}
  settings = runner.Settings(configs=('small',), plan=spec.GPU_PLAN, repeats=3, budget_s=240, deadline_s=400)
  (group, _), *_ = settings.groups(gpu=True)
  fresh = runner.Runner(settings, machine, _Progress(), time.perf_counter())
  assert fresh._fits(group, 'magnet-jax', 0.0, 0.0) is None
  late = runner.Runner(settings, machine, _Progress(), time.perf_counter() - 380)
  assert 'exceeds the' in late._fits(group, 'magnet-jax', 0.0, 0.0)
  assert '--budget-s' in fresh._fits(spec.Group('small', 30.0, 256, True, True), 'audiocraft-fp32', 0.0, 0.0)
