"""Prompt schedules and step progress on the embedded default: does a scheduled change show in the music, and what
does the progress variant cost?

  python benchmarks/controls.py [--seeds 4] [--duration 10] [--runs 3] [--json benchmarks/results/controls.json]
                                [--checkpoint DIR (default: the embedded default)]

Schedule: "ambient pad drone" for the first half, "fast drum groove" from the middle on (one piece, windows of the
model's 5 s), against each text alone; the onset rate (`audio.stats.onset_rate`, the statistic that separates these
two captions in the corpus) of each half, per seed. Progress: `generate_tokens` of one window with and without an
`on_step` callback, same tokens and the ratio of median warm times.
"""
import argparse
import json
import statistics
import time

import numpy as np

from magnet_jax.audio import stats
from magnet_jax.generation import pretrained
from magnet_jax.io import params as params_io

CALM, BUSY = 'ambient pad drone', 'fast drum groove'


def _halves(audio: np.ndarray, rate: int) -> list[float]:
  half = audio.shape[-1] // 2
  return [stats.onset_rate(audio[0, :half], rate), stats.onset_rate(audio[0, half:], rate)]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--seeds', type=int, default=4)
  parser.add_argument('--duration', type=float, default=10.0)
  parser.add_argument('--runs', type=int, default=3)
  parser.add_argument('--json', default=None)
  parser.add_argument('--checkpoint', default=None)
  args = parser.parse_args()
  pipeline = pretrained.load(args.checkpoint)
  rate, seeds = pipeline.sample_rate, list(range(args.seeds))
  pieces = {'schedule': [[(0, CALM), (args.duration / 2, BUSY)]], CALM: [CALM], BUSY: [BUSY]}
  rows = {}
  for name, description in pieces.items():
    audio = pipeline.generate(description * len(seeds), args.duration, seed=seeds)
    rows[name] = [_halves(clip, rate) for clip in audio]
  print(f'onset rate (1/s) per half, {args.duration:g} s, seeds {seeds}\n')
  print('| piece | seed | first half | second half |\n|---|---|---|---|')
  for name, values in rows.items():
    for seed, (first, second) in zip(seeds, values, strict=True):
      print(f'| {name} | {seed} | {first:.2f} | {second:.2f} |')
  for name, values in rows.items():
    first, second = np.mean(values, axis=0)
    print(f'| {name} | mean | {first:.2f} | {second:.2f} |')

  def timed(**kwargs):
    codes = pipeline.generate_tokens([BUSY], seed=0, **kwargs)
    warm = []
    for _ in range(args.runs):
      start = time.perf_counter()
      pipeline.generate_tokens([BUSY], seed=0, **kwargs)
      warm.append(time.perf_counter() - start)
    return codes, statistics.median(warm)

  plain, plain_seconds = timed()
  codes, seconds = timed(on_step=lambda done, total: None)
  progress = {'same_tokens': bool((codes == plain).all()), 'default_s': plain_seconds, 'progress_s': seconds,
              'ratio': seconds / plain_seconds, 'steps': pipeline.decoding.num_steps}
  print(f'\nstep progress, one {pipeline.duration:g} s window, {progress["steps"]} steps: same tokens '
        f'{progress["same_tokens"]}, {plain_seconds:.3f} s -> {seconds:.3f} s (ratio {progress["ratio"]:.3f})')
  if args.json:
    params_io.save_json(args.json, {'onset_rate_halves': rows, 'seeds': seeds, 'duration_s': args.duration,
                                    'progress': progress})
    print(json.dumps(progress))


if __name__ == '__main__':
  main()
