"""Work that must not grow with what an untrusted request asks for: window planning time and the peak memory of an
infill on a long audio prompt.

  python benchmarks/hardening.py [--plan-seconds 1e5] [--infill-seconds 3600] [--json FILE]

Planning: `windows.plan` for a text-only piece of --plan-seconds at 50 Hz (10 s windows, 5 s overlap). Infill: a
random-weight pipeline (`generation.random_pipeline`, 1.6 kHz codec, 0.6 s window) regenerates 1 s in the middle
of --infill-seconds of noise, in a child process whose peak resident memory (ru_maxrss) is reported beside the same
process's peak before the call (the pipeline loaded and compiled on a short prompt). Prints a markdown table.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from magnet_jax.generation import windows
from magnet_jax.io import files

_INFILL = '''
import json, resource, sys, time
import numpy as np
from magnet_jax.generation import random_pipeline
seconds = float(sys.argv[1])
pipeline = random_pipeline.build()
rate = pipeline.sample_rate
pipeline.infill(np.zeros((1, rate * 4), np.float32), rate, ['warm up'], 2.0, 3.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
audio = np.random.default_rng(0).uniform(-0.5, 0.5, (1, int(seconds * rate))).astype(np.float32)
start = time.perf_counter()
out = pipeline.infill(audio, rate, ['calm piano'], seconds / 2, seconds / 2 + 1)
elapsed = time.perf_counter() - start
assert out.shape[-1] == audio.shape[-1]
print(json.dumps({'rss_before_mib': before / 1024, 'rss_peak_mib': resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, 'infill_s': elapsed}))
'''


def plan_seconds(seconds: float) -> tuple[int, float]:
  known = np.zeros(int(seconds * 50), bool)
  start = time.perf_counter()
  count = len(windows.plan(known, 500, 250))
  return count, time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--plan-seconds', type=float, default=1e5)
  parser.add_argument('--infill-seconds', type=float, default=3600.0)
  parser.add_argument('--json', help='also write the results here')
  args = parser.parse_args()
  count, planning = plan_seconds(args.plan_seconds)
  package_root = os.path.dirname(os.path.dirname(os.path.abspath(windows.__file__ + '/..')))
  child = subprocess.run([sys.executable, '-c', _INFILL, str(args.infill_seconds)], capture_output=True, text=True,
                         env={**os.environ, 'PYTHONPATH': package_root})  # the child runs the same magnet_jax
  if child.returncode:
    sys.exit(f'the infill run failed:\n{child.stderr[-3000:]}')
  infill = json.loads(child.stdout.strip().splitlines()[-1])
  results = {'plan': {'seconds': args.plan_seconds, 'windows': count, 'plan_s': planning},
             'infill': {'seconds': args.infill_seconds, **infill},
             'host_maxrss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
  print('| measure | value |\n|---|---|')
  print(f'| plan {args.plan_seconds:g} s ({count} windows) | {planning:.3f} s |')
  print(f'| infill 1 s of {args.infill_seconds:g} s: peak RSS | {infill["rss_peak_mib"]:.0f} MiB '
        f'(before the call {infill["rss_before_mib"]:.0f} MiB) |')
  print(f'| infill 1 s of {args.infill_seconds:g} s: time | {infill["infill_s"]:.2f} s |')
  if args.json:
    text = json.dumps(results, indent=2) + '\n'
    files.atomic_write(args.json, lambda tmp: open(tmp, 'w').write(text))


if __name__ == '__main__':
  main()
