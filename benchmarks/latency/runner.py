"""Runs the grid (or the `--gpu` plan): per case group one worker per system, the first (compiling) calls, then
interleaved repeats; optionally a jax.profiler trace of one magnet-jax decode.

A system is skipped with a message, never a crash, when it cannot run the case, when its estimated memory or
time exceeds what is available (per call: `budget_s`; for the whole run: `deadline_s`, with estimates calibrated
on the cases already measured), or when its worker fails, dies or times out.
"""
import dataclasses
import functools
import math
import os
import tempfile
import time

import numpy as np
from absl import logging
from tqdm import tqdm

from benchmarks.latency import report, spec, systems
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
  plan: tuple | None = None                            # (duration_s, batch, systems) per group, instead of the grid.
  deadline_s: float = 0.0                              # the whole run's time budget (0: none).
  profile_dir: str = ''                                # trace one magnet-jax decode of the first group here.
  require_gpu: bool = False                            # refuse to run without a GPU (--gpu without --dry-run).
  command: str = ''

  def groups(self, gpu: bool) -> list[tuple[spec.Group, tuple[str, ...]]]:
    """The case groups in order, each with its systems."""
    if self.plan is None:
      return [(g, self.systems) for g in spec.grid(self.configs, self.durations, self.batches, self.cfgs, gpu)]
    return [(spec.Group(config, float(duration), batch, cfg, gpu), systems)
            for config in self.configs for cfg in self.cfgs for duration, batch, systems in self.plan]


def _load_avg() -> list[float]:
  return [round(x, 2) for x in os.getloadavg()]


def _check_tokens(tokens: np.ndarray, group: spec.Group, system: str) -> None:
  shape = (group.batch, group.model.n_q, group.output_frames(system))
  if tokens.shape != shape or tokens.min() < 0 or tokens.max() >= group.model.card:
    raise WorkerError(f'produced tokens of shape {tokens.shape} in [{tokens.min()}, {tokens.max()}], expected '
                      f'{shape} in [0, {group.model.card})')


class Runner:
  """Collects rows, skips and checks while the grid runs."""

  def __init__(self, settings: Settings, machine: dict, progress: tqdm, started: float):
    self.settings, self.machine, self.progress = settings, machine, progress
    self.rows, self.train_rows, self.skipped, self.checks = [], [], [], []
    self.profile = None
    self.started = started  # perf_counter() at the start of the run (for deadline_s)
    self.overhead_s: dict[str, float] = {}  # system -> largest observed first-call overhead (start, compile)
    self.floor_s: dict[str, float] = {}     # system -> smallest observed warm latency

  def seconds_left(self) -> float:
    if not self.settings.deadline_s:
      return math.inf
    return self.settings.deadline_s - (time.perf_counter() - self.started)

  def call_seconds(self, group: spec.Group, system: str) -> float:
    """Estimated warm call (`spec.estimate_seconds` plus the smallest latency this system showed so far)."""
    return spec.estimate_seconds(group, system, self.machine['matmul_flops'], self.floor_s.get(system, 0.0))

  def _overhead_seconds(self, group: spec.Group, system: str) -> float:
    """The first call's extra cost: as observed for this system, else for the JAX systems seen, else a default."""
    seen = [s for s in self.overhead_s if s in spec.JAX_SYSTEMS] if system in spec.JAX_SYSTEMS else []
    if system in self.overhead_s or seen:
      return self.overhead_s.get(system) or max(self.overhead_s[s] for s in seen)
    return spec.overhead_seconds(group, system)

  def skip(self, system: str, case: str, reason: str, calls: int) -> None:
    logging.warning('skipping %s on %s: %s', system, case, reason)
    self.skipped.append({'system': system, 'case': case, 'reason': reason})
    self.progress.update(calls)

  def _fits(self, group: spec.Group, system: str, committed: float, pending_s: float) -> str | None:
    """Why the estimated time or memory of `system` on `group` is too much, or None. `committed`: GPU bytes the
    group's workers already started are estimated to hold (on CPU the available memory is read live);
    `pending_s`: the estimated repeats of the group's started workers, still to come."""
    calls = self.settings.repeats + 1
    call = self.call_seconds(group, system)
    if calls * call > self.settings.budget_s:
      return f'estimated {calls * call:.0f} s for {calls} calls exceeds --budget-s={self.settings.budget_s:g}'
    total = self._overhead_seconds(group, system) + calls * call
    left = self.seconds_left() - pending_s
    if total > left:
      return f'estimated {total:.0f} s (first call and {calls - 1} warm) exceeds the {max(left, 0):.0f} s left of ' \
             f'--deadline-s={self.settings.deadline_s:g}'
    available = self.machine['memory_bytes'] - committed if group.gpu else available_memory_bytes()
    needed = spec.estimate_bytes(group, system)
    if available is not None and needed > 0.8 * available:
      return f'estimated {needed / 2**30:.1f} GiB exceeds 80% of the {available / 2**30:.1f} GiB available'
    return None

  def _start(self, system: str, group: spec.Group, weights: systems.Weights) -> tuple[Worker, Timing, np.ndarray]:
    """A worker holding `system`, after its first (compiling) call, whose tokens are checked."""
    self.progress.set_postfix_str(f'{group.name}: building {system}')
    start = time.perf_counter()
    worker = Worker(functools.partial(systems.build, system, group, weights), self.settings.budget_s)
    try:
      self.progress.set_postfix_str(f'{group.name}: {system} first call')
      seconds, tokens = worker.request('call', self.settings.budget_s)
      _check_tokens(tokens, group, system)
      worker.request('reset_peak', 60)
    except WorkerError:
      worker.close()
      raise
    self.overhead_s[system] = max(self.overhead_s.get(system, 0.0), time.perf_counter() - start)
    return worker, Timing(seconds), tokens

  def measure_group(self, group: spec.Group, group_systems: tuple[str, ...], weights: systems.Weights,
                    unavailable: str | None) -> None:
    """Every system on `group`: build, first call, interleaved repeats, peak memory; rows in system order."""
    workers, timings, outputs, committed, pending_s = {}, {}, {}, 0.0, 0.0
    try:
      for system in group_systems:
        reason = (unavailable if system.startswith('audiocraft') else None) or systems.unsupported(group, system)
        reason = reason or self._fits(group, system, committed, pending_s)
        try:
          if reason:
            raise WorkerError(reason)
          workers[system], timings[system], outputs[system] = self._start(system, group, weights)
        except WorkerError as e:
          self.skip(system, group.name, str(e), self.settings.repeats + 1)
          continue
        committed += spec.estimate_bytes(group, system)
        pending_s += self.settings.repeats * min(timings[system].first_s, self.call_seconds(group, system))
        self.progress.update(1)
      for repeat in range(self.settings.repeats):
        round_s = sum(timings[s].runs[-1] if timings[s].runs else timings[s].first_s for s in workers)
        if repeat and round_s > self.seconds_left():
          logging.warning('%s: stopping after %d warm runs (--deadline-s)', group.name, repeat)
          self.progress.update((self.settings.repeats - repeat) * len(workers))
          break
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
        self.floor_s[system] = min(self.floor_s.get(system, math.inf), timings[system].median_s)
      if self.settings.profile_dir and self.profile is None and 'magnet-jax' in workers:
        self.progress.set_postfix_str(f'{group.name}: magnet-jax profile')
        workers['magnet-jax'].request(('profile', self.settings.profile_dir), self.settings.budget_s)
        self.profile = {'case': group.name, 'folder': self.settings.profile_dir}
    finally:
      for worker in workers.values():
        worker.close()
    if 'magnet-jax' in outputs and 'magnet-jax-loop' in outputs:  # the two drivers of the same decoder
      same = bool(np.array_equal(outputs['magnet-jax'], outputs['magnet-jax-loop']))
      self.checks.append({'case': group.name, 'check': 'magnet-jax == magnet-jax-loop tokens', 'passed': same})

  def measure_training(self, name: str) -> None:
    """The sharded training step of model `name`: one compiling step, then `train_steps` timed ones."""
    from benchmarks.latency import training  # the trainer imports grain and TFDS, which the GPU image lacks
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
  started = time.perf_counter()
  for key, value in WORKER_ENV.items():
    os.environ.setdefault(key, value)
  load_start = _load_avg()
  probe = Worker(Probe, 600)
  machine = probe.request('call', 600)[1]
  probe.close()
  if settings.require_gpu and machine['gpu'] is None:
    raise ValueError('--gpu: JAX sees no GPU (use --dry-run for the CPU rehearsal)')
  groups = settings.groups(machine['gpu'] is not None)
  total = (sum(len(s) for _, s in groups) * (settings.repeats + 1)
           + len(settings.train_configs) * (settings.train_steps + 1))
  with tqdm(total=total, desc='benchmark', unit='call') as progress, tempfile.TemporaryDirectory() as folder:
    runner = Runner(settings, machine, progress, started)
    exported = {}
    for group, group_systems in groups:
      if group.config not in exported:
        os.makedirs(os.path.join(folder, group.config))
        progress.set_postfix_str(f'{group.config}: random weights')
        max_batch = max(g.batch for g, _ in groups)
        model = spec.model_config(group.config, group.gpu)
        exported[group.config] = systems.export_weights(model, max_batch, os.path.join(folder, group.config))
      runner.measure_group(group, group_systems, *exported[group.config])
    for name in settings.train_configs:
      runner.measure_training(name)
  return {
      'machine': {'cpu': cpu_name(), 'gpu': machine['gpu'], 'jax': version('jax'), 'torch': version('torch')},
      'command': settings.command,
      'rows': runner.rows,
      'train_rows': runner.train_rows,
      'skipped': runner.skipped,
      'checks': runner.checks,
      'profile': runner.profile,
      'conditions': {'load_avg_start': load_start, 'load_avg_end': _load_avg(), 'repeats': settings.repeats,
                     'text_tokens': spec.TEXT_TOKENS, 'decoding': 'audiocraft defaults (steps 20/10/10/10, top-p 0.9)',
                     'worker_env': {k: os.environ[k] for k in WORKER_ENV},
                     'matmul_flops': machine['matmul_flops'], 'matmul_dtype': machine['matmul_dtype'],
                     'deadline_s': settings.deadline_s, 'wall_s': round(time.perf_counter() - runner.started, 1)},
  }
