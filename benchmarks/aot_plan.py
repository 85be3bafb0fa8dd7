"""The released sizes on TPU slices, planned on a CPU: every size x duration x sharding preset x slice compiled ahead
of time (`magnet_jax.training.aot`), and the one-program decoder on one chip of each generation (docs/scaling.md).

  python -m benchmarks.aot_plan                                   # the committed plan (resumes; ~1-2 h on 2 cores)
  python -m benchmarks.aot_plan --what=decode --slices=v5e-8 --sizes=small --durations=10 --batches=1,16 \\
      --out=/tmp/decode.json                                      # compile-only decoding for one chip
  python -m benchmarks.aot_plan --predict=OUT/results.json         # on a lent GPU: the plan beside measured rows

Writes <out>.json (rows, written after each one: a rerun skips the rows it holds), <out>.md (tables and the
recommendation) and <out>.png (predicted MFU per slice and preset). Training rows use PER_CHIP_BATCH examples per
chip (global batch = chips x PER_CHIP_BATCH) and `data.caption_len` text states; decoding rows use classifier-free
guidance (2 x batch rows), MAGNeT's default decoding and the latency benchmark's TEXT_TOKENS text states.
"""
import json
import os
import pathlib
import sys

import jax
from absl import flags
from tqdm import tqdm

from benchmarks.latency import spec
from magnet_jax.apps import runner as cli
from magnet_jax.io.files import atomic_write
from magnet_jax.training import aot, chips

SIZES = ('small', 'medium')
DURATIONS = (10, 30)
PRESETS = {'data_parallel': 1, 'fsdp': 1, 'tensor_parallel': 4}  # preset -> mesh model axis
SLICES = ('v5e-8', 'v5e-16', 'v5e-64', 'v5e-256', 'v5p-8', 'v5p-128', 'v6e-8', 'v6e-256')
PER_CHIP_BATCH = 4
DECODE_BATCHES = (1, 4, 16, 64, 256)
DECODE_SLICES = ('v5e-8', 'v5p-8', 'v6e-8')  # decoding is planned for one chip of each generation

_WHAT = flags.DEFINE_list('what', 'train,decode', 'programs to plan: train, decode')
_SIZES = flags.DEFINE_list('sizes', ','.join(SIZES), 'released sizes: small, medium')
_DURATIONS = flags.DEFINE_list('durations', ','.join(map(str, DURATIONS)), 'segment / clip seconds: 10, 30')
_PRESETS = flags.DEFINE_list('presets', ','.join(PRESETS), 'training sharding presets')
_SLICES = flags.DEFINE_list('slices', ','.join(SLICES), 'training slices (slice or topology names); decoding uses '
                            'one chip of the first slice of each generation among them')
_BATCHES = flags.DEFINE_list('batches', ','.join(map(str, DECODE_BATCHES)), 'decoding batches (clips per call)')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/aot-tpu.json', 'JSON plan (.md and .png beside it)')
_PREDICT = flags.DEFINE_string('predict', '', "a latency benchmark's results.json measured on this machine's GPU: "
                               'add each row the plan of its program compiled for this device (`predicted_*`)')


def train_config(size: str, duration: int, preset: str):
  """configs/<size>[_30s].py with the preset and its mesh."""
  from magnet_jax.configs import medium, medium_30s, small, small_30s
  module = {('small', 10): small, ('small', 30): small_30s, ('medium', 10): medium, ('medium', 30): medium_30s}
  config = module[size, duration].get_config()
  config.sharding.preset = preset
  config.sharding.mesh.update(data=-1, model=PRESETS[preset])
  return config


def _key(row: dict) -> tuple:
  return row['program'], row['model'], row['topology'], row['preset'], row['batch']


def _jobs(what, sizes, durations, presets, slices, batches):
  """(key, make plan) of every row asked for, the most useful first (a run cut short still answers): per duration,
  training with FSDP, then decoding, then the other presets."""
  jobs = []
  for d, duration in enumerate(durations):
    for size in sizes:
      name = f'{size}-{duration}s'
      for p, preset in enumerate(presets if 'train' in what else ()):
        for s, topology in enumerate(slices):
          def make(size=size, duration=duration, preset=preset, topology=topology, name=name):
            config = train_config(size, duration, preset)
            config.train.batch_size = PER_CHIP_BATCH * len(aot.topology_devices(topology))
            return aot.plan_training(config, topology, name=name)
          rank = 0 if preset == 'fsdp' else 2 + p
          jobs.append(((d, rank, s), ('train', name, topology, preset, None), make))
  if 'decode' in what:
    generations = {}
    for topology in slices:
      generations.setdefault(chips.topology_name(topology).split(':')[0], topology)
    for d, duration in enumerate(durations):
      for size in sizes:
        for g, topology in enumerate(generations.values()):
          for batch in batches:
            name = f'{size}-{duration}s'
            def make(size=size, duration=duration, batch=batch, topology=topology, name=name):
              model = _decode_model(size, duration)
              return aot.plan_decoding(model, float(duration), batch, topology, spec.TEXT_TOKENS, name=name)
            jobs.append(((d, 1, g), ('decode', name, topology, '', batch), make))
  return [(key, make) for _, key, make in sorted(jobs, key=lambda job: job[0])]


def _decode_model(size: str, duration: float):
  """The released size as the latency benchmark runs it on an accelerator: bfloat16 weights and compute."""
  return spec.model_config(size, gpu=True, segment_duration=float(duration), dtype='bfloat16', param_dtype='bfloat16')


def _load(path: str) -> dict:
  if os.path.exists(path):
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  return {'rows': [], 'unavailable': {}}


def _done(results: dict, key: tuple) -> bool:
  program, name, topology, preset, batch = key
  return topology in results['unavailable'] or any(
      _key(r)[:4] == (program, name, topology, preset) and (batch is None or r['batch'] == batch)
      for r in results['rows'])


def plan(what, sizes, durations, presets, slices, batches, out: str) -> dict:
  """Runs the rows `out` does not hold yet, writing it (and its .md, .png) after each one."""
  results = _load(out)
  results.update(chips=[c.__dict__ for c in chips.CHIPS], per_chip_batch=PER_CHIP_BATCH,
                 text_tokens_decode=spec.TEXT_TOKENS, jax=jax.__version__,
                 command=' '.join(['python -m benchmarks.aot_plan'] + sys.argv[1:]))
  jobs = _jobs(what, sizes, durations, presets, slices, batches)
  with tqdm(total=len(jobs), desc='aot plan', unit='compile') as progress:
    for key, make in jobs:
      progress.set_postfix_str(' '.join(str(k) for k in key if k))
      if not _done(results, key):
        try:
          row = make().row()
        except aot.TopologyError as e:
          results['unavailable'][key[2]] = str(e)
        else:
          results['rows'].append(row)
          tqdm.write(f'{" ".join(str(k) for k in key if k)}: ' + (
              f'{row["step_s"] * 1e3:.1f} ms, MFU {row["mfu"]:.0%}, {row["memory"]["total"] / chips.GIB:.1f} GiB'
              if row['fits'] else row['message']) + f' (compiled in {row["compile_s"]:.0f} s)')
        write(results, out)
      progress.update()
  return results


def recommend(rows: list[dict]) -> list[dict]:
  """Per size, duration and chip generation: the smallest slice on which training fits, with its best preset."""
  best = {}
  for r in rows:
    if r['program'] != 'train' or not r['fits']:
      continue
    group = (r['model'], r['chip'])
    if group not in best or (r['chips'], -r['mfu']) < (best[group]['chips'], -best[group]['mfu']):
      best[group] = r
  return [{'model': m, 'chip': c, 'topology': r['topology'], 'chips': r['chips'], 'preset': r['preset'],
           'step_s': r['step_s'], 'mfu': r['mfu'], 'memory_gib': r['memory']['total'] / chips.GIB}
          for (m, c), r in sorted(best.items())]


def largest_batches(rows: list[dict]) -> list[dict]:
  """Per model and chip: the largest decoding batch that fits one chip, and its latency floor."""
  out = {}
  for r in rows:
    if r['program'] == 'decode' and r['fits'] and r['batch'] >= out.get((r['model'], r['chip']), {'batch': 0})['batch']:
      out[r['model'], r['chip']] = r
  return [{'model': m, 'chip': c, 'batch': r['batch'], 'latency_s': r['step_s']} for (m, c), r in sorted(out.items())]


def markdown(results: dict) -> str:
  rows = results['rows']
  train = [r for r in rows if r['program'] == 'train']
  decode = [r for r in rows if r['program'] == 'decode']
  gib = lambda r: f'{r["memory"]["total"] / chips.GIB:.1f}' if r['memory'].get('total') else '-'
  lines = [f'# Ahead-of-time plan: MAGNeT on TPU slices ({results["command"]})', '',
           f'Training: {PER_CHIP_BATCH} examples per chip, AdamW, params float32, compute bfloat16 (medium: remat). '
           'Step time = roofline max(FLOPs / peak, bytes / HBM bandwidth, collective bytes / ICI bandwidth); '
           'MFU = analytic model FLOPs / (step time x peak): upper bounds (docs/scaling.md).', '',
           '## Recommended slice per size', '', '| model | chip | slice | preset | step ms | MFU | GiB/chip |',
           '| --- | --- | --- | --- | --- | --- | --- |']
  lines += [f'| {r["model"]} | {r["chip"]} | {r["topology"]} ({r["chips"]} chips) | {r["preset"]} | '
            f'{r["step_s"] * 1e3:.0f} | {r["mfu"]:.0%} | {r["memory_gib"]:.1f} |' for r in recommend(rows)]
  lines += ['', '## Training', '', '| model | slice | chips | preset | mesh | batch | fits | GiB/chip | step ms | '
            'bound | tokens/s | MFU | compile s |', '|' + ' --- |' * 13]
  for r in train:
    mesh = 'x'.join(str(v) for v in r['mesh'].values())
    speed = (f'{r["step_s"] * 1e3:.0f} | {r["bound"]} | {r["tokens_per_s"]:,.0f} | {r["mfu"]:.0%}' if r['fits']
             else '- | - | - | -')
    lines.append(f'| {r["model"]} | {r["topology"]} | {r["chips"]} | {r["preset"]} | {mesh} | {r["batch"]} | '
                 f'{"yes" if r["fits"] else "no"} | {gib(r)} | {speed} | {r["compile_s"]:.0f} |')
  lines += ['', '## Decoding on one chip (CFG on, default decoding: 20/10/10/10 steps)', '',
            '| model | chip | batch | fits | GiB | latency floor s | bound | clips/s | compile s |',
            '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
  for r in decode:
    speed = f'{r["step_s"]:.3f} | {r["bound"]} | {r["batch"] / r["step_s"]:.1f}' if r['fits'] else '- | - | -'
    lines.append(f'| {r["model"]} | {r["chip"]} | {r["batch"]} | {"yes" if r["fits"] else "no"} | {gib(r)} | '
                 f'{speed} | {r["compile_s"]:.0f} |')
  lines += ['', '| model | chip | largest batch per chip (of those planned) | its latency floor s |',
            '| --- | --- | --- | --- |']
  lines += [f'| {r["model"]} | {r["chip"]} | {r["batch"]} | {r["latency_s"]:.3f} |' for r in largest_batches(rows)]
  if results.get('note'):
    lines += ['', results['note']]
  if results['unavailable']:
    lines += ['', 'Not described by libtpu here: ' + '; '.join(f'{k}: {v}' for k, v in results['unavailable'].items())]
  lines += ['', '## Chips', '', '| chip | bf16 TFLOP/s | HBM GiB | HBM GB/s | ICI GB/s | source |',
            '| --- | --- | --- | --- | --- | --- |']
  lines += [f'| {c["name"]} | {c["peak_flops"] / 1e12:.0f} | {c["hbm_bytes"] / chips.GIB:.1f} | '
            f'{c["hbm_bandwidth"] / 1e9:.0f} | {c["ici_bandwidth"] / 1e9:.0f} | {c["source"]} |'
            for c in results['chips']]
  return '\n'.join(lines) + '\n'


def plot(results: dict, path: str) -> None:
  """Predicted MFU of every training row (0 where it does not fit), one panel per model."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  train = [r for r in results['rows'] if r['program'] == 'train']
  models = sorted({r['model'] for r in train})
  if not models:
    return
  fig, axes = plt.subplots(len(models), 1, figsize=(10, 2.6 * len(models)), squeeze=False)
  for ax, model in zip(axes[:, 0], models, strict=True):
    rows = [r for r in train if r['model'] == model]
    slices = list(dict.fromkeys(r['topology'] for r in rows))
    for i, preset in enumerate(PRESETS):
      values = {r['topology']: (r['mfu'] if r['fits'] else 0.0) for r in rows if r['preset'] == preset}
      xs = [j + (i - 1) * 0.27 for j in range(len(slices))]
      ax.bar(xs, [values.get(s, 0.0) * 100 for s in slices], width=0.27, label=preset)
      for x, s in zip(xs, slices, strict=True):
        if s in values and not values[s]:
          ax.text(x, 0.5, 'no fit', rotation=90, ha='center', va='bottom', fontsize=7)
    ax.set_xticks(range(len(slices)), slices, fontsize=8)
    ax.set_ylabel('MFU %')
    ax.set_title(f'{model}: predicted MFU ({PER_CHIP_BATCH} examples per chip)', fontsize=9)
  axes[0, 0].legend(fontsize=8)
  fig.tight_layout()
  atomic_write(path, lambda tmp: fig.savefig(tmp, format='png', dpi=110))
  plt.close(fig)


def write(results: dict, out: str) -> None:
  atomic_write(out, lambda tmp: pathlib.Path(tmp).write_text(json.dumps(results, indent=1), encoding='utf-8'))
  base = os.path.splitext(out)[0]
  atomic_write(base + '.md', lambda tmp: pathlib.Path(tmp).write_text(markdown(results), encoding='utf-8'))
  plot(results, base + '.png')


def predict(path: str) -> None:
  """Adds to each magnet-jax row of a latency results.json the plan of its program on this machine's device."""
  with open(path, encoding='utf-8') as f:
    results = json.load(f)
  for row in results['rows']:
    if row['system'] != 'magnet-jax' or row['config'] not in spec.RELEASED or not row['cfg']:
      continue
    try:
      p = aot.plan_decoding(_decode_model(row['config'], row['duration_s']), row['duration_s'], row['batch'], None,
                            spec.TEXT_TOKENS)
    except ValueError as e:  # a device without figures in chips.py (e.g. the CPU of a dry run)
      print(f'no prediction: {e}')
      return
    row.update(predicted_latency_s=p.step_s if p.fits else None, predicted_bound=p.bound,
               predicted_memory_gib=(p.memory.get('total') or 0) / chips.GIB, predicted_fits=p.fits)
    print(f'{row["config"]} {row["duration_s"]:g}s b{row["batch"]}: measured {row["latency_s_median"]:.3f} s, '
          f'predicted floor {p.step_s:.3f} s ({p.bound})')
  atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(json.dumps(results, indent=1), encoding='utf-8'))


def main() -> None:
  if _PREDICT.value:
    return predict(_PREDICT.value)
  what = [w for w in _WHAT.value if w]
  if not what or set(what) - {'train', 'decode'}:
    raise ValueError(f'--what={",".join(_WHAT.value)}: expected train, decode or both')
  if set(_SIZES.value) - set(SIZES) or set(_PRESETS.value) - set(PRESETS):
    raise ValueError(f'--sizes among {SIZES}, --presets among {tuple(PRESETS)}')
  durations = [int(d) for d in _DURATIONS.value]
  batches = [int(b) for b in _BATCHES.value]
  if any(not 1 <= d <= 60 for d in durations) or any(not 1 <= b <= 4096 for b in batches):
    raise ValueError('--durations in 1..60 s, --batches in 1..4096')
  slices = [chips.topology_name(s) and s for s in _SLICES.value]  # checks the names first
  results = plan(what, _SIZES.value, durations, _PRESETS.value, slices, batches, _OUT.value)
  print(markdown(results))


if __name__ == '__main__':
  cli.run('python -m benchmarks.aot_plan', main)
