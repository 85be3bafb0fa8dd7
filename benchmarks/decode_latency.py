"""Latency of MAGNeT decoding as one XLA program vs a Python loop over the same jitted step.

Random tiny LM (no checkpoint needed), batch 1 with CFG, audiocraft's default decoding (steps 20/10/10/10, top-p
0.9). Both drivers run the identical step function and produce identical codes (checked).

  python benchmarks/decode_latency.py --dim 64 --layers 2 --card 32 --length 500 --runs 5
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from magnet_jax import decoding
from magnet_jax.config import MagnetConfig
from magnet_jax.models.params import init_params


def _seconds(fn) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--dim', type=int, default=64)
  parser.add_argument('--layers', type=int, default=2)
  parser.add_argument('--heads', type=int, default=4)
  parser.add_argument('--card', type=int, default=32)
  parser.add_argument('--length', type=int, default=500, help='frames (500 = 10 s, trimmed to 498)')
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--runs', type=int, default=5)
  args = parser.parse_args()

  config = MagnetConfig(dim=args.dim, num_heads=args.heads, num_layers=args.layers, card=args.card, text_dim=32)
  config_decoding = decoding.DecodingConfig()
  params = jax.jit(init_params, static_argnums=0)(config, jax.random.key(0))
  cond = jax.random.normal(jax.random.key(1), (args.batch, 8, config.text_dim))
  cond_mask = jnp.ones((args.batch, 8), bool)
  rng = jax.random.key(2)
  static = dict(lm_config=config, decoding=config_decoding, length=args.length)

  start = time.perf_counter()
  fused = decoding.generate.lower(params, cond, cond_mask, rng, **static).compile()
  fused_compile = time.perf_counter() - start
  fused_codes = fused(params, cond, cond_mask, rng)

  # The Python-loop driver: the same MaskedDecoder.step, jitted once (the step index is a traced argument).
  length = decoding.output_length(args.length, config.span_len, config_decoding.span_arrangement)
  decoder = decoding.MaskedDecoder(config_decoding, config.mask_id, config.span_len, length, (0,) * config.n_q)
  step = jax.jit(lambda p, c, m, i, state: decoder.step(i, state, decoding.magnet_logits_fn(p, config, c, m)))
  state = decoder.init(decoding.initial_codes(args.batch, config, length, None), rng)
  start = time.perf_counter()
  step = step.lower(params, cond, cond_mask, jnp.int32(0), state).compile()
  loop_compile = time.perf_counter() - start

  def python_loop():
    current = state
    for i in range(config_decoding.num_steps):
      current = step(params, cond, cond_mask, jnp.int32(i), current)
    return current.codes

  assert bool(jnp.all(python_loop() == fused_codes)), 'the two drivers disagree'
  fused_runs, loop_runs = [], []
  for _ in range(args.runs):  # interleaved, so that load from other processes hits both alike
    fused_runs.append(_seconds(lambda: fused(params, cond, cond_mask, rng)))
    loop_runs.append(_seconds(python_loop))

  print(f'{jax.devices()[0].device_kind}: dim {args.dim}, {args.layers} layers, card {args.card}, T {length}, '
        f'batch {args.batch} (+CFG), {config_decoding.num_steps} steps')
  for name, compile_s, runs in (('one program', fused_compile, fused_runs), ('python loop', loop_compile, loop_runs)):
    print(f'  {name:12s} compile {compile_s:6.2f} s   warm median {statistics.median(runs) * 1e3:8.1f} ms '
          f'(min {min(runs) * 1e3:.1f}, {args.runs} runs)')


if __name__ == '__main__':
  main()
