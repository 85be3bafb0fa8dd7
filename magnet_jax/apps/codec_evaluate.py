"""Score a codec on held-out corpus clips: a JSON report of reconstruction mel distance and prompt statistics.

  python -m magnet_jax.apps.codec_evaluate [--codec DIR] [--split test --seed 0 --num-clips 2000]
"""
import json

from absl import flags

from magnet_jax.apps import runner
from magnet_jax.codec import io
from magnet_jax.corpus.clips import render_split
from magnet_jax.evaluation.codec import report

_CODEC = flags.DEFINE_string('codec', io.EMBEDDED_CODEC_DIR, 'Codec folder (codec.json + codec.safetensors).')
_SPLIT = flags.DEFINE_enum('split', 'test', ['train', 'valid', 'test'], 'Corpus split to score.')
_SEED = flags.DEFINE_integer('seed', 0, 'Corpus seed.')
_NUM_CLIPS = flags.DEFINE_integer('num-clips', 2000, 'Corpus size (the test split is about 5% of it).')
_DURATION = flags.DEFINE_float('duration', 5.0, 'Seconds per clip.')


def main():
  config, params = io.load_codec(_CODEC.value)
  clips = render_split(_SPLIT.value, _SEED.value, _NUM_CLIPS.value, config.sample_rate, _DURATION.value)
  print(json.dumps(report(config, params, clips), indent=2))


if __name__ == '__main__':
  runner.run('magnet_jax.apps.codec_evaluate', main)
