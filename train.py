"""Train MAGNeT, alone or as one of the processes of a multi-host job.

  python train.py --config=configs/tiny.py --workdir=/tmp/magnet-tiny [--config.optim.lr=1e-3] [--resume]

Multi-host: run the same command on every host (process). On a TPU pod slice, under SLURM (srun) or Open MPI
the processes find each other by themselves; elsewhere pass --coordinator_address=HOST0:PORT --num_processes=N
--process_id=I (or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID). See docs/sharding.md.
"""
from absl import flags, logging
from ml_collections import config_flags

from magnet_jax.apps import runner as cli
from magnet_jax.training import distributed

_CONFIG = config_flags.DEFINE_config_file('config', None, 'ml_collections config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder: checkpoints and metrics.jsonl.')
_RESUME = flags.DEFINE_bool('resume', False, 'Continue exactly from the latest checkpoint in --workdir.')
_DISTRIBUTED = flags.DEFINE_enum('distributed', 'auto', distributed.MODES,
                                 'Join a multi-process job: auto = when the flags/env below are set or a TPU pod, '
                                 'SLURM or Open MPI launcher is detected; on = always; off = never.')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'HOST:PORT of process 0 (env JAX_COORDINATOR_ADDRESS).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes in the job (env JAX_NUM_PROCESSES).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process, 0 .. num_processes - 1 (env JAX_PROCESS_ID).')
_INIT_TIMEOUT = flags.DEFINE_integer('init_timeout', 300, 'Seconds to wait for every process to connect.')
_HEARTBEAT_TIMEOUT = flags.DEFINE_integer('heartbeat_timeout', 100,
                                          'Seconds of silence after which a process counts as dead and the job stops.')
_SHUTDOWN_TIMEOUT = flags.DEFINE_integer('shutdown_timeout', 300,
                                         'Seconds a finished process waits for the others at the final barrier.')
flags.mark_flags_as_required(['config', 'workdir'])


def main():
  distributed.initialize(_DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                         init_timeout=_INIT_TIMEOUT.value, heartbeat_timeout=_HEARTBEAT_TIMEOUT.value,
                         shutdown_timeout=_SHUTDOWN_TIMEOUT.value)
  from magnet_jax.training.trainer import finished, train
  summary = train(_CONFIG.value, _WORKDIR.value, resume=_RESUME.value)
  logging.info('last metrics: %s', summary)
  logging.info('%s', finished(_CONFIG.value, _WORKDIR.value, summary['step']))


if __name__ == '__main__':
  cli.run('train.py', main)
