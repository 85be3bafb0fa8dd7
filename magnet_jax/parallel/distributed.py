"""Joining a multi-process job on JAX's distributed runtime (TPU pod slices, multi-node GPU, local CPU processes).

Every process runs the same `train.py`; `initialize` connects it to the others before JAX touches a device, so
`jax.devices()` lists the devices of all processes and one global Mesh spans them. A process that dies takes the
job down instead of leaving the others blocked: their next collective fails on the closed connection (and
`magnet_jax.apps.runner` ends each survivor at once with a one-line error), or, if they stay blocked, the coordination
service misses its heartbeats for `heartbeat_timeout` seconds and aborts them.
"""
import glob
import importlib.util
import os

import jax
from absl import logging

MODES = ('auto', 'on', 'off')
# Explicit settings, read from these variables when the flags are not given (the names of JAX's own arguments).
ENV = {'coordinator_address': 'JAX_COORDINATOR_ADDRESS', 'num_processes': 'JAX_NUM_PROCESSES',
       'process_id': 'JAX_PROCESS_ID'}


def detect_launcher() -> str | None:
  """The multi-process launcher whose environment `jax.distributed.initialize()` reads by itself, if any.

  Returns:
    'slurm' (srun with several tasks), 'openmpi' (mpirun with several ranks), 'tpu' (a Cloud TPU VM: libtpu
    installed and TPU chips attached; JAX asks the TPU metadata for the other hosts) or None.
  """
  if int(os.environ.get('SLURM_NTASKS', '1')) > 1 and 'SLURM_PROCID' in os.environ:
    return 'slurm'
  if int(os.environ.get('OMPI_COMM_WORLD_SIZE', '1')) > 1:
    return 'openmpi'
  if importlib.util.find_spec('libtpu') is not None and (glob.glob('/dev/accel*') or glob.glob('/dev/vfio/[0-9]*')):
    return 'tpu'
  return None


def _setting(name: str, value):
  """`value` if given, else the environment variable for `name` (None if neither)."""
  if value not in (None, ''):
    return value
  return os.environ.get(ENV[name]) or None


def _log_from_lead_only(process_id: int) -> None:
  """INFO lines (progress, metrics, JAX's own) come from process 0 only; the others log warnings and errors."""
  if process_id != 0:
    logging.set_verbosity(logging.WARNING)


def initialize(mode: str = 'auto', coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, init_timeout: int = 300, heartbeat_timeout: int = 100,
               shutdown_timeout: int = 300) -> bool:
  """Joins the job's other processes (before any JAX computation); returns whether this is a multi-process run.

  Args:
    mode: 'off' runs alone; 'on' always calls `jax.distributed.initialize`, with the explicit settings given and
      JAX's auto-detection (TPU, SLURM, Open MPI, ...) for the rest; 'auto' does so when explicit settings are
      given (flags or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID) or `detect_launcher` finds a
      launcher, and runs alone otherwise.
    coordinator_address: 'host:port' of process 0, where it serves the coordination service.
    num_processes: processes in the job.
    process_id: this process's index in [0, num_processes).
    init_timeout: seconds to wait for all processes to connect.
    heartbeat_timeout: seconds without a heartbeat after which a process counts as dead and the job stops.
    shutdown_timeout: seconds a finishing process waits for the others at the final barrier.

  Raises:
    ValueError: an unknown mode, or explicit settings that are incomplete or out of range with no launcher to
      fill in the rest.
  """
  if mode not in MODES:
    raise ValueError(f'--distributed={mode!r}; expected one of {MODES}')
  settings = {name: _setting(name, value) for name, value in
              (('coordinator_address', coordinator_address), ('num_processes', num_processes),
               ('process_id', process_id))}
  given = {name: value for name, value in settings.items() if value is not None}
  launcher = detect_launcher()
  if mode == 'off' or (mode == 'auto' and not given and launcher is None):
    return False
  if given and len(given) < len(settings) and launcher is None:
    missing = [f'--{name.replace("_", "-")} (or {ENV[name]})' for name in settings if name not in given]
    raise ValueError(f'multi-process run with {given} also needs {", ".join(missing)}')
  for name in ('num_processes', 'process_id'):
    if name in given:
      given[name] = int(given[name])
  if 'num_processes' in given and not 0 <= given.get('process_id', 0) < given['num_processes']:
    raise ValueError(f'--process-id={given.get("process_id")} is not in [0, --num-processes={given["num_processes"]})')
  # Collectives between the CPU devices of different processes (tests, CPU-only clusters) go over gloo.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  _log_from_lead_only(given.get('process_id', 0))  # before JAX's own connection logs, when the id is known
  jax.distributed.initialize(**given, initialization_timeout=init_timeout,
                             heartbeat_timeout_seconds=heartbeat_timeout, shutdown_timeout_seconds=shutdown_timeout)
  _log_from_lead_only(jax.process_index())
  logging.info('%d processes joined via %s: %d devices (%d per process)', jax.process_count(),
               given.get('coordinator_address') or launcher or 'auto-detection', jax.device_count(),
               jax.local_device_count())
  return True
