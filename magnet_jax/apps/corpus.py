"""Render the procedural text-to-music corpus (WAVs + JSONL manifests).

  python -m magnet_jax.apps.corpus --out DIR --num-clips N --seed S [--sample-rate 16000] [--duration 5]
      [--workers 1] [--stats] [--category mallets]

--stats then prints each statistic's min/median/max per category (and per solo instrument) of the new corpus.
"""
import os

from absl import flags

from magnet_jax.apps import runner
from magnet_jax.corpus.writer import generate_corpus, summarize

_OUT = flags.DEFINE_string('out', None, 'Output folder (created if missing).')
_NUM_CLIPS = flags.DEFINE_integer('num-clips', None, 'Number of clips.')
_SEED = flags.DEFINE_integer('seed', 0, 'Corpus seed; same seed, same files.')
_SAMPLE_RATE = flags.DEFINE_integer('sample-rate', 16000, 'Hz.')
_DURATION = flags.DEFINE_float('duration', 5.0, 'Seconds per clip.')
_WORKERS = flags.DEFINE_integer('workers', 1, 'Rendering processes.')
_CATEGORY = flags.DEFINE_string('category', None, 'Render only this category, e.g. mallets (solo marimba, a style '
                                'the default corpus lacks, to fine-tune on); default: the usual mix.')
_STATS = flags.DEFINE_bool('stats', False, 'Print per-category audio statistics afterwards.')
flags.mark_flags_as_required(['out', 'num-clips'])


def main() -> None:
  records = generate_corpus(_OUT.value, _NUM_CLIPS.value, _SEED.value, _SAMPLE_RATE.value, _DURATION.value,
                            _WORKERS.value, category=_CATEGORY.value)
  print(f'wrote {len(records)} clips to {_OUT.value}')
  if _STATS.value:
    for group, stats in summarize(os.path.join(_OUT.value, 'manifest.jsonl')).items():
      cells = '  '.join(f'{name} {lo:.3g}/{mid:.3g}/{hi:.3g}' for name, (lo, mid, hi) in stats.items())
      print(f'{group:12s} {cells}   (min/median/max)')


if __name__ == '__main__':
  runner.run('python -m magnet_jax.apps.corpus', main)
