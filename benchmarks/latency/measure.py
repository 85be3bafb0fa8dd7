"""Measurement: one worker process per system, wall-clock timing, peak memory, the machine.

Every system (and the training step) runs in its own spawned process: its peak memory is its own (the RSS
high-water mark on CPU, the framework allocator's peak on GPU), a crash or an out-of-memory kill loses only its
rows, and the two frameworks' thread pools never share a process. The parent calls the workers in turn, so
repeats of different systems interleave and load from other processes hits them alike.
"""
import dataclasses
import importlib.metadata
import multiprocessing
import os
import re
import statistics
import time
from collections.abc import Callable


class WorkerError(RuntimeError):
  """A worker failed to build or run its system, died (e.g. killed for memory) or timed out."""


@dataclasses.dataclass
class Timing:
  """Wall-clock seconds of the first (cold) call and of the warm calls."""
  first_s: float
  runs: list[float] = dataclasses.field(default_factory=list)

  @property
  def median_s(self) -> float:
    return statistics.median(self.runs)

  @property
  def compile_s(self) -> float:
    """One-time cost: the first call minus a warm one (tracing and compiling, lazy initialisation)."""
    return max(self.first_s - self.median_s, 0.0)


def _proc_bytes(path: str, field: str) -> int | None:
  """A `field:  N kB` line of a /proc file in bytes (Linux), else None."""
  try:
    with open(path) as f:
      return int(re.search(rf'{field}:\s+(\d+) kB', f.read()).group(1)) * 1024
  except (OSError, AttributeError):
    return None


def rss_peak_bytes() -> int | None:
  """This process's peak RSS in bytes since the last `reset_rss_peak` (Linux), else None."""
  return _proc_bytes('/proc/self/status', 'VmHWM')


def reset_rss_peak() -> None:
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')  # resets VmHWM to the current RSS (Linux >= 4.0)
  except OSError:
    pass


class Target:
  """What a worker holds: `__call__` is timed; its peak memory is the process's RSS high-water mark on CPU and
  `device_peak_bytes` (weights included) on GPU."""
  gpu = False

  def reset_peak(self) -> None:
    if not self.gpu:
      reset_rss_peak()

  def peak_bytes(self) -> int | None:
    return self.device_peak_bytes() if self.gpu else rss_peak_bytes()

  def info(self) -> dict:
    """Anything else the parent asks about after the timed calls."""
    return {}

  def profile(self, folder: str) -> None:
    """One call traced into `folder` (the JAX systems)."""
    raise NotImplementedError(f'{type(self).__name__} has no profile')

  def device_peak_bytes(self) -> int | None:
    """JAX's device allocator peak over this process's life (jax cannot reset it)."""
    import jax
    return max(int((d.memory_stats() or {}).get('peak_bytes_in_use', 0)) for d in jax.local_devices())


def _serve(conn, factory: Callable) -> None:
  """A worker's loop: builds `factory()` then answers 'call' (seconds, result), 'reset_peak', 'peak', 'info',
  ('profile', folder), 'stop'."""
  try:
    target = factory()
    conn.send(('ok', None))
    while True:
      try:
        command = conn.recv()
      except EOFError:  # the parent is gone
        return
      if command == 'stop':
        return
      if command == 'call':
        start = time.perf_counter()
        result = target()
        conn.send(('ok', (time.perf_counter() - start, result)))
      elif command == 'reset_peak':
        target.reset_peak()
        conn.send(('ok', None))
      elif command == 'peak':
        conn.send(('ok', target.peak_bytes()))
      elif command == 'info':
        conn.send(('ok', target.info()))
      elif command[0] == 'profile':
        target.profile(command[1])
        conn.send(('ok', None))
  except Exception as e:  # reported to the parent, which skips the system
    conn.send(('error', f'{type(e).__name__}: {" ".join(str(e).split())[:300]}'))


class Worker:
  """A spawned process holding one built system; `request` sends it a command and waits for the answer."""

  def __init__(self, factory: Callable, timeout_s: float):
    context = multiprocessing.get_context('spawn')
    self._conn, child = context.Pipe()
    # Not a daemon: torch.compile may start compile worker processes of its own.
    self._process = context.Process(target=_serve, args=(child, factory))
    self._process.start()
    child.close()
    self.request(None, timeout_s)  # waits for the build

  def request(self, command: str | None, timeout_s: float):
    if command is not None:
      self._conn.send(command)
    if not self._conn.poll(timeout_s):
      self.close()
      raise WorkerError(f'no answer within {timeout_s:.0f} s (killed)')
    try:
      status, payload = self._conn.recv()
    except EOFError:
      self._process.join(5)
      raise WorkerError(f'worker died (exit code {self._process.exitcode}; out of memory?)') from None
    if status == 'error':
      self.close()
      raise WorkerError(payload)
    return payload

  def close(self) -> None:
    if self._process.is_alive():
      try:
        self._conn.send('stop')
      except OSError:
        pass
      self._process.join(10)
    if self._process.is_alive():
      self._process.kill()
      self._process.join()
    self._conn.close()


def cpu_name() -> str:
  """'<model name>, <n> cores' of this machine (the cores this process may use)."""
  name = 'unknown CPU'
  try:
    with open('/proc/cpuinfo') as f:
      name = re.search(r'model name\s*:\s*(.+)', f.read()).group(1).strip()
  except (OSError, AttributeError):
    pass
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  return f'{name}, {cores} cores'


def version(package: str) -> str | None:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def matmul_flops() -> tuple[float, str]:
  """(FLOP/s, dtype) of the best of 10 square matmuls on the default device, measured now: float32 2048^3 on CPU,
  bfloat16 8192^3 on an accelerator."""
  import jax
  import jax.numpy as jnp
  gpu = jax.devices()[0].platform != 'cpu'
  size, dtype = (8192, jnp.bfloat16) if gpu else (2048, jnp.float32)
  a = jnp.ones((size, size), dtype)
  matmul = jax.jit(lambda a, b: a @ b)
  jax.block_until_ready(matmul(a, a))
  times = []
  for _ in range(10):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, a))
    times.append(time.perf_counter() - start)
  return 2 * size ** 3 / min(times), jnp.dtype(dtype).name


def peak_flops() -> tuple[float, str]:
  """(FLOP/s, source) of the default device for MFU: the vendor's figure on GPUs of the chips table
  (`magnet_jax.training.chips`), else `matmul_flops` measured now, right after the timed steps, under the same load."""
  import jax

  from magnet_jax.training import chips
  kind = jax.devices()[0].device_kind
  if jax.default_backend() == 'gpu':
    try:
      return chips.chip_for(kind).peak_flops, f'nominal bf16 dense ({kind})'
    except ValueError:
      pass
  flops, dtype = matmul_flops()
  return flops, f'{dtype} matmul measured in the same worker'


class Probe(Target):
  """Describes the accelerator: the device, its memory and a measured matmul rate (for the cost estimates)."""

  def __call__(self) -> dict:
    import jax
    device = jax.devices()[0]
    gpu = device.platform == 'gpu'
    flops, dtype = matmul_flops()
    return {'gpu': device.device_kind if gpu else None, 'devices': jax.device_count(),
            'memory_bytes': (device.memory_stats() or {}).get('bytes_limit') if gpu else None,
            'matmul_flops': flops, 'matmul_dtype': dtype}


def available_memory_bytes() -> int | None:
  """MemAvailable of this machine (Linux), else None."""
  return _proc_bytes('/proc/meminfo', 'MemAvailable')
