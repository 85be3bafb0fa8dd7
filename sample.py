"""Generate music with MAGNeT: text, continuation, infilling, outpainting, loops and long form (any duration).

  python sample.py --prompt "fast drum groove with bass at 140 bpm" --prompt "slow solo piano in A minor" --out outputs

Installed, the same command is `magnet-jax`. All flags: `python sample.py --help`; guide: docs/sampling.md.
"""
from magnet_jax.apps.sample import main

if __name__ == '__main__':
  main()
