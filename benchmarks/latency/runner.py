"""Runs the grid: per case group one worker per system, the first (compiling) calls, then interleaved repeats.

A system is skipped with a message, never a crash, when it cannot run the case, when its estimated memory or
time exceeds what is available, or when its worker fails, dies or times out.
"""
import dataclasses
import functools
import os
import tempfile

import numpy as np
from absl import logging
from tqdm import tqdm

from benchmarks.latency import report, spec, systems, training
from benchmarks.latency.measure import Probe, Timing, Worker, WorkerError, available_memory_bytes, cpu_name, version

# Worker environment: several processes share a GPU (no preallocation, so the JAX peak is what it uses); on a
# loaded CPU, OpenMP threads that spin while waiting slow PyTorch down by up to 10x, so they sleep instead.
WORKER_ENV = {'XLA_PYTHON_CLIENT_PREALLOCATE': 'false', 'OMP_WAIT_POLICY': 'PASSIVE'}


@dataclasses.dataclass(frozen=True)
class Settings:
  """What to run (see `python -m benchmarks.latency --help`)."""
  configs: tuple[str, ...] = ('tiny', 'compute')
  durations: tuple[float, ...] = (10.0,)
  batches: tuple[int, ...] = (1,)
  cfgs: tuple[bool, ...] = (True,)
  systems: tuple[str, ...] = spec.DEFAULT_SYSTEMS
  repeats: int = 5                                     # warm calls per system (after the compiling one).
  budget_s: float = 900.0                              # skip a system whose estimated calls exceed this.
  train_configs: tuple[str, ...] = ('tiny', 'compute')
  train_batch: int = 8
  train_frames: int = 500
  train_steps: int = 5
  command: str = ''


def _load_avg() -> list[float]:
  return [round(x, 2) for x in os.getloadavg()]


def _check_tokens(tokens: np.ndarray, group: spec.Group, system: str) -> None:
  shape = (group.batch, group.model.n_q, group.output_frames(system))
  if tokens.shape != shape or tokens.min() < 0 or tokens.max() >= group.model.card:
    raise WorkerError(f'produced tokens of shape {tokens.shape} in [{tokens.min()}, {tokens.max()}], expected '
                      f'{shape} in [0, {group.model.card})')


class Runner:
  """Collects rows, skips and checks while the grid runs."""

  def __init__(self, settings: Settings, machine: dict, progress: tqdm):
    self.settings, self.machine, self.progress = settings, machine, progress
    self.rows, self.train_rows, self.skipped, self.checks = [], [], [], []

  def skip(self, system: str, case: str, reason: str, calls: int) -> None:
    logging.warning('skipping %s on %s: %s', system, case, reason)
    self.skipped.append({'system': system, 'case': case, 'reason': reason})
    self.progress.update(calls)

  def _fits(self, group: spec.Group, system: str, committed: float) -> str | None:
    """Why the estimated time or memory of `system` on `group` is too much, or None. `committed`: GPU bytes the
    group's workers already started are estimated to hold (on CPU the available memory is read live)."""
    calls = self.settings.repeats + 1
    seconds = calls * spec.estimate_seconds(group, system, self.machine['matmul_flops'])
    if seconds > self.settings.budget_s:
      return f'estimated {seconds:.0f} s for {calls} calls exceeds --budget_s={self.settings.budget_s:g}'
    available = self.machine['memory_bytes'] - committed if group.gpu else available_memory_bytes()
    needed = spec.estimate_bytes(group, system)
    if available is not None and needed > 0.8 * available:
      return f'estimated {needed / 2**30:.1f} GiB exceeds 80% of the {available / 2**30:.1f} GiB available'
    return None

  def _start(self, system: str, group: spec.Group, weights: systems.Weights) -> tuple[Worker, Timing, np.ndarray]:
    """A worker holding `system`, after its first (compiling) call, whose tokens are checked."""
    self.progress.set_postfix_str(f'{group.name}: building {system}')
    worker = Worker(functools.partial(systems.build, system, group, weights), self.settings.budget_s)
    try:
      self.progress.set_postfix_str(f'{group.name}: {system} first call')
      seconds, tokens = worker.request('call', self.settings.budget_s)
      _check_tokens(tokens, group, system)
      worker.request('reset_peak', 60)
    except WorkerError:
      worker.close()
      raise
    return worker, Timing(seconds), tokens

  def measure_group(self, group: spec.Group, weights: systems.Weights, unavailable: str | None) -> None:
    """Every system on `group`: build, first call, interleaved repeats, peak memory; rows in system order."""
    workers, timings, outputs, committed = {}, {}, {}, 0.0
    try:
      for system in self.settings.systems:
        reason = (unavailable if system.startswith('audiocraft') else None) or systems.unsupported(group, system)
        reason = reason or self._fits(group, system, committed)
        try:
          if reason:
            raise WorkerError(reason)
          workers[system], timings[system], outputs[system] = self._start(system, group, weights)
        except WorkerError as e:
          self.skip(system, group.name, str(e), self.settings.repeats + 1)
          continue
        committed += spec.estimate_bytes(group, system)
        self.progress.update(1)
      for _ in range(self.settings.repeats):
        for system, worker in list(workers.items()):
          self.progress.set_postfix_str(f'{group.name}: {system}')
          try:
            timings[system].runs.append(worker.request('call', self.settings.budget_s)[0])
          except WorkerError as e:
            del workers[system]
            self.skip(system, group.name, str(e), self.settings.repeats - len(timings[system].runs))
            continue
          self.progress.update(1)
      for system, worker in workers.items():
        self.rows.append(report.row(system, group, timings[system], worker.request('peak', 60)))
    finally:
      for worker in workers.values():
        worker.close()
    if 'magnet-jax' in outputs and 'magnet-jax-loop' in outputs:  # the two drivers of the same decoder
      same = bool(np.array_equal(outputs['magnet-jax'], outputs['magnet-jax-loop']))
      self.checks.append({'case': group.name, 'check': 'magnet-jax == magnet-jax-loop tokens', 'passed': same})

  def measure_training(self, name: str) -> None:
    """The sharded training step of model `name`: one compiling step, then `train_steps` timed ones."""
    settings, gpu = self.settings, self.machine['gpu'] is not None
    case = f'{spec.config_label(name, gpu)} train b{settings.train_batch} T{settings.train_frames}'
    self.progress.set_postfix_str(case)
    timing, worker = None, None
    try:
      worker = Worker(functools.partial(training.TrainStep, name, settings.train_batch, settings.train_frames, gpu),
                      settings.budget_s)
      timing = Timing(worker.request('call', settings.budget_s)[0])
      worker.request('reset_peak', 60)
      self.progress.update(1)
      for _ in range(settings.train_steps):
        timing.runs.append(worker.request('call', settings.budget_s)[0])
        self.progress.update(1)
      peak = worker.request('peak', 60)
      device = worker.request('info', 600)
    except WorkerError as e:
      done = 0 if timing is None else 1 + len(timing.runs)
      self.skip('train-step', case, str(e), settings.train_steps + 1 - done)
      return
    finally:
      if worker is not None:
        worker.close()
    self.train_rows.append(report.train_row(name, gpu, settings.train_batch, settings.train_frames,
                                            self.machine['devices'], timing, peak, device['peak_flops'],
                                            device['peak_source']))


def run(settings: Settings) -> dict:
  """Runs the grid and the training steps; returns the results (see report.py for the row keys)."""
  for key, value in WORKER_ENV.items():
    os.environ.setdefault(key, value)
  load_start = _load_avg()
  probe = Worker(Probe, 600)
  machine = probe.request('call', 600)[1]
  probe.close()
  groups = spec.grid(settings.configs, settings.durations, settings.batches, settings.cfgs, machine['gpu'] is not None)
  total = (len(groups) * len(settings.systems) * (settings.repeats + 1)
           + len(settings.train_configs) * (settings.train_steps + 1))
  with tqdm(total=total, desc='benchmark', unit='call') as progress, tempfile.TemporaryDirectory() as folder:
    runner = Runner(settings, machine, progress)
    exported = {}
    for group in groups:
      if group.config not in exported:
        os.makedirs(os.path.join(folder, group.config))
        progress.set_postfix_str(f'{group.config}: random weights')
        max_batch = max(settings.batches)
        model = spec.model_config(group.config, group.gpu)
        exported[group.config] = systems.export_weights(model, max_batch, os.path.join(folder, group.config))
      runner.measure_group(group, *exported[group.config])
    for name in settings.train_configs:
      runner.measure_training(name)
  return {
      'machine': {'cpu': cpu_name(), 'gpu': machine['gpu'], 'jax': version('jax'), 'torch': version('torch')},
      'command': settings.command,
      'rows': runner.rows,
      'train_rows': runner.train_rows,
      'skipped': runner.skipped,
      'checks': runner.checks,
      'conditions': {'load_avg_start': load_start, 'load_avg_end': _load_avg(), 'repeats': settings.repeats,
                     'text_tokens': spec.TEXT_TOKENS, 'decoding': 'audiocraft defaults (steps 20/10/10/10, top-p 0.9)',
                     'worker_env': {k: os.environ[k] for k in WORKER_ENV},
                     'matmul_flops': machine['matmul_flops'], 'matmul_dtype': machine['matmul_dtype']},
  }
