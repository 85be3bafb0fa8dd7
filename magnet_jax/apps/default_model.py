"""Rebuild the embedded default model (magnet_jax/assets/default) from nothing, in one command
(`training.default_model`).

  python -m magnet_jax.apps.default_model [--workdir DIR] [--num-clips 2000] [--seed 0] [--out DIR] [--config.X=Y ...]
"""
import os
import sys

from absl import flags
from ml_collections import config_flags

from magnet_jax import codec
from magnet_jax.apps import runner
from magnet_jax.generation import pretrained
from magnet_jax.training import default_model

_WORKDIR = flags.DEFINE_string('workdir', os.path.join('/tmp', 'magnet-embedded'), 'Intermediate results.')
_OUT = flags.DEFINE_string('out', pretrained.EMBEDDED_DIR, 'Pipeline folder to write.')
_NUM_CLIPS = flags.DEFINE_integer('num-clips', 2000, 'Corpus clips.')
_SEED = flags.DEFINE_integer('seed', 0, 'Corpus seed.')
_CODEC = flags.DEFINE_string('codec', codec.EMBEDDED_CODEC_DIR, 'Codec folder.')
_WORKERS = flags.DEFINE_integer('workers', 2, 'Corpus rendering processes.')
_CONFIG = config_flags.DEFINE_config_file('config', default_model.CONFIG_FILE, 'The LM training config; override '
                                          'fields with --config.X=Y.')


def main() -> None:
  overrides = [arg for arg in sys.argv[1:] if arg.startswith('--config.')]
  default_model.build(_WORKDIR.value, _OUT.value, _NUM_CLIPS.value, _SEED.value, _CODEC.value, _WORKERS.value,
                      overrides)


if __name__ == '__main__':
  runner.run(default_model.BUILD_COMMAND, main)
