"""Sampling presets against the checkpoint's own decoding values on the embedded default: do they keep its prompt
following?

  python -m benchmarks.presets [--seeds 4] [--json benchmarks/results/presets.json] [--checkpoint DIR]

Each setting generates the four contrast captions of `evaluation.prompt_following` (a fast drum groove against an
ambient drone, a flute against a bass) for every seed in one batch, and reports the drum groove's and the drone's
mean onset rate, the flute's and the bass's mean spectral centroid, and the mean 'stats' prompt-following score of
the four captions (higher = follows its text better). Settings: the checkpoint's defaults; each preset as shipped
(`decoding.presets`, its steps and span arrangement over the checkpoint's temperature and CFG); each preset's steps
with audiocraft's sampling (temperature 3, CFG 10 -> 1, what the presets forced before); and each preset's steps
with the other span arrangement.
"""
import argparse
import json

import numpy as np

from magnet_jax.decoding import presets
from magnet_jax.evaluation import prompt_following
from magnet_jax.generation import pretrained
from magnet_jax.io import params as params_io

AUDIOCRAFT_SAMPLING = {'temp': 3.0, 'max_cfg_coef': 10.0, 'min_cfg_coef': 1.0}
_OTHER = {'nonoverlap': 'stride1', 'stride1': 'nonoverlap'}


def settings(n_q: int) -> dict[str, dict]:
  """Setting name -> decoding overrides over the checkpoint's defaults."""
  table = {'checkpoint defaults': {}}
  for name in presets.PRESETS:
    shipped = presets.overrides(name, n_q, has_rescorer=False)
    table[f'{name}'] = shipped
    table[f'{name} + audiocraft temp/CFG'] = {**shipped, **AUDIOCRAFT_SAMPLING}
    table[f'{name} + {_OTHER[shipped["span_arrangement"]]}'] = {
        **shipped, 'span_arrangement': _OTHER[shipped['span_arrangement']]}
  return table


def measure(pipeline, overrides: dict, seeds: list[int]) -> dict:
  """One setting's statistics over the seeds (see the module docstring)."""
  decoding = pipeline.decoding_with(**overrides)
  audio, stats = prompt_following.evaluate(pipeline, seeds, decoding=decoding)
  captions = prompt_following.contrast_captions()
  texts = [c for c in captions for _ in seeds]
  score = prompt_following.stats_score(texts, audio, pipeline.sample_rate)
  row = {'decoding': {'decoding_steps': list(decoding.decoding_steps), 'span_arrangement': decoding.span_arrangement,
                      'temp': decoding.temp, 'max_cfg_coef': decoding.max_cfg_coef,
                      'min_cfg_coef': decoding.min_cfg_coef},
         'forwards': decoding.num_steps, 'stats_score': float(np.mean(score))}
  for contrast in prompt_following.CONTRASTS:
    for side in ('high', 'low'):
      caption = getattr(contrast, side)
      row[f'{contrast.statistic}:{caption}'] = float(np.mean([s[contrast.statistic] for s in stats[caption]]))
  return row


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--seeds', type=int, default=4)
  parser.add_argument('--json', default=None)
  parser.add_argument('--checkpoint', default=None)
  args = parser.parse_args()
  pipeline = pretrained.load(args.checkpoint)
  seeds = list(range(args.seeds))
  rows = {name: measure(pipeline, overrides, seeds) for name, overrides in settings(pipeline.lm_config.n_q).items()}
  contrasts = prompt_following.CONTRASTS
  columns = [f'{c.statistic}:{caption}' for c in contrasts for caption in (c.high, c.low)]
  short = {'onset_rate': 'onsets/s', 'centroid_hz': 'centroid Hz'}
  print(f'{pipeline.duration:g} s, seeds {seeds}, means over seeds\n')
  print('| setting | steps | spans | temp | CFG | ' + ' | '.join(
      f'{short[c.statistic]} {caption}' for c in contrasts for caption in (c.high, c.low)) + ' | stats score |')
  print('|---' * (6 + len(columns)) + '|')
  for name, row in rows.items():
    d = row['decoding']
    print(f"| {name} | {'/'.join(map(str, d['decoding_steps']))} | {d['span_arrangement']} | {d['temp']:g} | "
          f"{d['max_cfg_coef']:g}->{d['min_cfg_coef']:g} | " + ' | '.join(f'{row[c]:.2f}' for c in columns)
          + f" | {row['stats_score']:.3f} |")
  if args.json:
    params_io.save_json(args.json, {'seeds': seeds, 'duration_s': pipeline.duration, 'settings': rows})
    print(json.dumps({name: row['stats_score'] for name, row in rows.items()}))


if __name__ == '__main__':
  main()
