"""Train MAGNeT, alone or as one of the processes of a multi-host job.

  python train.py --config=configs/tiny.py --workdir=/tmp/magnet-tiny [--config.optim.lr=1e-3] [--resume]

Multi-host: run the same command on every host (process). On a TPU pod slice, under SLURM (srun) or Open MPI
the processes find each other by themselves; elsewhere pass --coordinator-address=HOST0:PORT --num-processes=N
--process-id=I (or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID). See docs/sharding.md.

Before renting a slice: compile the same step for it here and read the plan (memory per chip, FLOPs, collectives,
roofline step time and MFU; docs/scaling.md):

  python train.py --config=configs/medium.py --compile-only --topology=v5e-16 [--num-slices=2]
"""
from absl import flags, logging
from ml_collections import config_flags

from magnet_jax.apps import runner as cli
from magnet_jax.parallel import distributed

_CONFIG = config_flags.DEFINE_config_file('config', None, 'ml_collections config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder: checkpoints and metrics.jsonl.')
_RESUME = flags.DEFINE_bool('resume', False, 'Continue exactly from the latest checkpoint in --workdir.')
_DISTRIBUTED = flags.DEFINE_enum('distributed', 'auto', distributed.MODES,
                                 'Join a multi-process job: auto = when the flags/env below are set or a TPU pod, '
                                 'SLURM or Open MPI launcher is detected; on = always; off = never.')
_COORDINATOR = flags.DEFINE_string('coordinator-address', None, 'HOST:PORT of process 0 (env JAX_COORDINATOR_ADDRESS).')
_NUM_PROCESSES = flags.DEFINE_integer('num-processes', None, 'Processes in the job (env JAX_NUM_PROCESSES).')
_PROCESS_ID = flags.DEFINE_integer('process-id', None, 'This process, 0 .. num_processes - 1 (env JAX_PROCESS_ID).')
_INIT_TIMEOUT = flags.DEFINE_integer('init-timeout', 300, 'Seconds to wait for every process to connect.')
_HEARTBEAT_TIMEOUT = flags.DEFINE_integer('heartbeat-timeout', 100,
                                          'Seconds of silence after which a process counts as dead and the job stops.')
_SHUTDOWN_TIMEOUT = flags.DEFINE_integer('shutdown-timeout', 300,
                                         'Seconds a finished process waits for the others at the final barrier.')
_COMPILE_ONLY = flags.DEFINE_bool('compile-only', False, 'Compile the train step for --topology without running '
                                  'anything and print its plan: memory per chip, FLOPs, collectives, roofline step '
                                  'time, MFU; or one line saying it does not fit and what would (needs libtpu).')
_TOPOLOGY = flags.DEFINE_string('topology', None, 'With --compile-only: a TPU topology (v5e:4x4, v5p:2x2x4, v6e:8x8) '
                                'or slice name (v5e-16, v5p-128).')
_NUM_SLICES = flags.DEFINE_integer('num-slices', 1, 'With --compile-only: slices of --topology (multi-slice).')
flags.mark_flags_as_required(['config'])


def compile_only():
  if not _TOPOLOGY.value:
    raise ValueError('--compile-only needs --topology (e.g. v5e-16 or v5e:4x4)')
  from magnet_jax.training import aot
  print(aot.describe(aot.plan_training(_CONFIG.value, _TOPOLOGY.value, _NUM_SLICES.value)))


def main():
  if _COMPILE_ONLY.value:
    return compile_only()
  if not _WORKDIR.value:
    raise ValueError('--workdir is required (the output folder)')
  distributed.initialize(_DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                         init_timeout=_INIT_TIMEOUT.value, heartbeat_timeout=_HEARTBEAT_TIMEOUT.value,
                         shutdown_timeout=_SHUTDOWN_TIMEOUT.value)
  from magnet_jax.training.trainer import finished, train
  summary = train(_CONFIG.value, _WORKDIR.value, resume=_RESUME.value)
  logging.info('last metrics: %s', summary)
  logging.info('%s', finished(_CONFIG.value, _WORKDIR.value, summary['step']))


if __name__ == '__main__':
  cli.run('train.py', main)
