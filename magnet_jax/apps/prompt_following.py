"""Prompt-following statistics of a pipeline: contrasting captions generated for several seeds.

  python -m magnet_jax.apps.prompt_following [--checkpoint DIR] [--seeds 0,1,2,3] [--duration S] [--set temp=2.0]

Prints each caption's statistics per seed and how far apart each contrast's two captions are
(`evaluation.prompt_following`); the embedded default's are in its pipeline.json.
"""
import json
import time

from absl import flags

from magnet_jax.apps import runner
from magnet_jax.decoding.config import parse_overrides
from magnet_jax.evaluation.prompt_following import evaluate, separation
from magnet_jax.generation import pretrained

_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Pipeline folder (default: the embedded default).')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2', '3'], 'Seeds, comma-separated: one generation per caption each.')
_DURATION = flags.DEFINE_float('duration', None, "Seconds (default: the pipeline's).")
_SET = flags.DEFINE_multi_string('set', [], 'A decoding override NAME=VALUE, e.g. temp=2.0 or decoding_steps=8,4,4,4 '
                                 '(repeatable; names and ranges: magnet-jax --help).')


def main() -> None:
  overrides = parse_overrides(_SET.value)
  seeds = [int(s) for s in _SEEDS.value]
  pipeline = pretrained.load(_CHECKPOINT.value)
  start = time.perf_counter()
  _, stats = evaluate(pipeline, seeds, _DURATION.value, decoding=pipeline.decoding_with(**overrides))
  for caption, per_seed in stats.items():
    cells = '  '.join(f'{name} ' + ' '.join(f'{s[name]:.3g}' for s in per_seed) for name in per_seed[0])
    print(f'{caption:45s} {cells}')
  print(json.dumps(separation(stats), indent=1))
  print(f'{len(stats) * len(seeds)} clips in {time.perf_counter() - start:.1f} s (compilation included)')


if __name__ == '__main__':
  runner.run('python -m magnet_jax.apps.prompt_following', main)
