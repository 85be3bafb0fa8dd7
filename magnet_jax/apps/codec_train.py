"""Train a codec (EnCodec: SEANet + residual VQ) on the procedural corpus.

  python -m magnet_jax.apps.codec_train --config=magnet_jax/configs/codec_default.py --workdir=/tmp/codec
"""
from absl import flags, logging
from ml_collections import config_flags

from magnet_jax.apps import runner
from magnet_jax.training.codec import train_codec

_CONFIG = config_flags.DEFINE_config_file('config', None, 'ml_collections config file (configs/codec_*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder: checkpoints/, metrics.jsonl, codec/.')
_RESUME = flags.DEFINE_bool('resume', False, 'Continue from the latest checkpoint in --workdir.')
_EXPORT_DIR = flags.DEFINE_string('export-dir', None, 'Also write the final codec folder here.')
flags.mark_flags_as_required(['config', 'workdir'])


def main():
  summary = train_codec(_CONFIG.value, _WORKDIR.value, resume=_RESUME.value, export_dir=_EXPORT_DIR.value)
  logging.info('done: %s', summary)


if __name__ == '__main__':
  runner.run('magnet_jax.apps.codec_train', main)
