"""Train MAGNeT.

  python train.py --config=configs/tiny.py --workdir=/tmp/magnet-tiny [--config.optim.lr=1e-3] [--resume]
"""
from absl import flags, logging
from ml_collections import config_flags

from magnet_jax import cli

_CONFIG = config_flags.DEFINE_config_file('config', None, 'ml_collections config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder: checkpoints and metrics.jsonl.')
_RESUME = flags.DEFINE_bool('resume', False, 'Continue exactly from the latest checkpoint in --workdir.')
flags.mark_flags_as_required(['config', 'workdir'])


def main():
  from magnet_jax.trainer import train
  summary = train(_CONFIG.value, _WORKDIR.value, resume=_RESUME.value)
  logging.info('done: %s', summary)


if __name__ == '__main__':
  cli.run('train.py', main)
