"""python -m magnet_jax.corpus --out DIR --num-clips N --seed S [--sample-rate 16000] [--duration 5] [--workers 1]

--stats then prints each statistic's min/median/max per category (and per solo instrument) of the new corpus.
"""
import argparse
import os
import sys

from magnet_jax.audio.stats import summarize
from magnet_jax.corpus.writer import generate_corpus


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog='python -m magnet_jax.corpus',
                                   description='Render the synthetic text-to-music corpus (WAVs + JSONL manifests).')
  parser.add_argument('--out', required=True, help='output folder (created if missing)')
  parser.add_argument('--num-clips', type=int, required=True, help='number of clips')
  parser.add_argument('--seed', type=int, default=0, help='corpus seed; same seed, same files')
  parser.add_argument('--sample-rate', type=int, default=16000, help='Hz')
  parser.add_argument('--duration', type=float, default=5.0, help='seconds per clip')
  parser.add_argument('--workers', type=int, default=1, help='rendering processes')
  parser.add_argument('--stats', action='store_true', help='print per-category audio statistics afterwards')
  args = parser.parse_args(argv)
  try:
    records = generate_corpus(args.out, args.num_clips, args.seed, args.sample_rate, args.duration, args.workers)
  except (ValueError, OSError) as e:
    sys.exit(f'{parser.prog}: error: {e}')
  print(f'wrote {len(records)} clips to {args.out}')
  if args.stats:
    for group, stats in summarize(os.path.join(args.out, 'manifest.jsonl')).items():
      cells = '  '.join(f'{name} {lo:.3g}/{mid:.3g}/{hi:.3g}' for name, (lo, mid, hi) in stats.items())
      print(f'{group:12s} {cells}   (min/median/max)')


if __name__ == '__main__':
  main()
