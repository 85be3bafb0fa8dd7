"""Latency of the sampling presets and of long-form generation, compile and generation timed apart.

  python benchmarks/sampling_latency.py [--runs 5] [--long 120] [--batch 1]

Random weights: configs/tiny.py's LM at MiniLM's width (0.6 s window, 30 frames) with a 1.6 kHz codec
(`generation.random_pipeline`); the quality preset is also timed with a random rescorer of the LM's size. Prints
markdown tables (docs/sampling.md holds a run's numbers).
"""
import argparse
import dataclasses
import os
import statistics
import time

import jax

from magnet_jax.decoding import presets
from magnet_jax.generation import random_pipeline
from magnet_jax.models.params import init_params

PROMPT = 'slow solo piano in A minor'


def _timed(pipeline, runs: int, **kwargs) -> tuple[float, float]:
  """(compile seconds, median warm seconds) of `pipeline.generate(**kwargs)`."""
  compiled = pipeline.compile_seconds
  pipeline.generate(**kwargs)
  compile_seconds = pipeline.compile_seconds - compiled
  warm = []
  for _ in range(runs):
    start = time.perf_counter()
    pipeline.generate(**kwargs)
    warm.append(time.perf_counter() - start)
  return compile_seconds, statistics.median(warm)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--runs', type=int, default=5)
  parser.add_argument('--long', type=float, default=120.0, help='long-form seconds')
  parser.add_argument('--batch', type=int, default=1)
  args = parser.parse_args()
  pipeline = random_pipeline.build()
  rescorer_config = dataclasses.replace(pipeline.lm_config, causal=True, codebooks_pattern='delay')
  rescored = dataclasses.replace(pipeline, rescorer_config=rescorer_config, rescorer_params=init_params(
      rescorer_config, jax.random.key(1)))
  descriptions = [PROMPT] * args.batch
  window = pipeline.lm_config.segment_duration
  print(f'{jax.devices()[0].device_kind}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; '
        f'batch {args.batch}, window {window} s')
  print('\n| preset | forwards | rescoring | compile (s) | generate (s) | s per generated s |')
  print('|---|---|---|---|---|---|')
  for name in presets.PRESETS:
    for with_rescorer in sorted({False, presets.PRESETS[name]['rescorer_weight'] > 0}):
      sampling = presets.overrides(name, pipeline.lm_config.n_q, with_rescorer)
      compile_seconds, warm = _timed(rescored if with_rescorer else pipeline, args.runs,
                                     descriptions=descriptions, duration=window, **sampling)
      forwards = sum(sampling['decoding_steps']) * (2 if with_rescorer else 1)
      print(f'| {name} | {forwards} | {"on" if with_rescorer else "off"} | {compile_seconds:.1f} | {warm:.3f} | '
            f'{warm / window:.3f} |')
  print(f'\n| long form ({args.long:g} s) | windows | compile (s) | generate (s) | s per generated s |\n'
        '|---|---|---|---|---|')
  for name in ('fast', 'balanced'):
    sampling = presets.overrides(name, pipeline.lm_config.n_q, False)
    windows = []
    compiled, start = pipeline.compile_seconds, time.perf_counter()
    for _ in pipeline.stream(descriptions, args.long, progress=lambda done, total, seen=windows: seen.append(total),
                             **sampling):
      pass
    compile_seconds = pipeline.compile_seconds - compiled
    seconds = time.perf_counter() - start - compile_seconds
    print(f'| {name} | {windows[-1]} | {compile_seconds:.1f} | {seconds:.1f} | {seconds / args.long:.3f} |')

  print('\n| program | same tokens | compile (s) | generate (s) | ratio to default |\n|---|---|---|---|---|')
  print(_progress_row(pipeline, descriptions, window, args.runs))


def _progress_row(pipeline, descriptions, duration: float, runs: int) -> str:
  """The step-progress variant (an ordered host callback after every decoding step) against the default program
  on one window: whether the tokens are the same, and the ratio of their median warm times."""
  def timed(**kwargs):
    compiled = pipeline.compile_seconds
    codes = pipeline.generate_tokens(descriptions, duration, **kwargs)
    compile_seconds, warm = pipeline.compile_seconds - compiled, []
    for _ in range(runs):
      start = time.perf_counter()
      pipeline.generate_tokens(descriptions, duration, **kwargs)
      warm.append(time.perf_counter() - start)
    return codes, compile_seconds, statistics.median(warm)

  plain, _, plain_seconds = timed()
  steps = []
  codes, compile_seconds, seconds = timed(on_step=lambda done, total: steps.append(done))
  return (f'| step progress ({pipeline.decoding.num_steps} callbacks) | {bool((codes == plain).all())} | '
          f'{compile_seconds:.1f} | {seconds:.3f} | {seconds / plain_seconds:.3f} (default {plain_seconds:.3f} s) |')


if __name__ == '__main__':
  main()
