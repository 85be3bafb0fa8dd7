"""The embedded default's quality at speed, with intervals: FAD, KAD and tag-KL (musicnn) per decoding setting,
each with a bootstrap interval, and each setting compared with the shipped one on the same prompts and seeds.

  OPENBLAS_NUM_THREADS=1 nice python -m benchmarks.quality_frontier [--clips 24] [--batch 8] [--draws 1000] \\
      [--settings NAME,...] [--out benchmarks/results/quality_frontier] [--redraw]

References: the held-out clips (valid + test splits) of the corpus the default was trained on (seed 0, 2000 clips,
16 kHz, 5 s). Every setting generates 5 s from the captions of the first --clips held-out clips, batch i with seed
i (the same prompts and seeds in every setting), scored against all held-out clips: FAD and KAD over musicnn
patches (two per clip), tag-KL paired with the clip whose caption was used. Intervals: `evaluation/bootstrap.py`
(clips resampled, --draws draws, seed 0, 95 %); a paired comparison with the shipped setting says whether a
difference is significant. Latency: seconds of generation per clip (batch --batch, compile excluded) on this
machine, noisy on a shared one (the plot's cost axis is the LM forwards). CLAP is not scored (no CLAP model ships
offline); rescoring and Hybrid are not settings of the embedded default (it has no rescorer LM and is not a hybrid
model). Writes <out>.json, <out>.md (tables) and <out>.png (the frontier with intervals), after every setting, so a
run cut short keeps what it measured; --redraw rewrites the tables and plot from the JSON.
"""
import argparse
import dataclasses
import json
import os
import time

import numpy as np
import tqdm

from magnet_jax.corpus import writer
from magnet_jax.evaluation import bootstrap, quality
from magnet_jax.evaluation.metrics import fad, kernel_audio_distance
from magnet_jax.generation import pretrained
from magnet_jax.io.files import atomic_write

CORPUS_SEED, CORPUS_CLIPS, DURATION = 0, 2000, 5.0
METRICS = ('fad', 'kad', 'kl')
SHIPPED = 'shipped'  # the embedded default's own decoding: 10/5/5/5 steps, cfg 3->1, temp 4 annealed, top-p 0.9
# name -> (group, DecodingConfig overrides of the embedded default's own decoding config), in the order they run.
SETTINGS = {
    SHIPPED: ('shipped', {}),
    'steps 4/2/2/2': ('steps', {'decoding_steps': (4, 2, 2, 2)}),
    'steps 20/10/10/10': ('steps', {'decoding_steps': (20, 10, 10, 10)}),
    'steps 2/1/1/1': ('steps', {'decoding_steps': (2, 1, 1, 1)}),
    'spans stride1': ('spans', {'span_arrangement': 'stride1'}),
    'cfg off (1)': ('cfg', {'max_cfg_coef': 1.0, 'min_cfg_coef': 1.0}),
    'cfg fixed 3': ('cfg', {'max_cfg_coef': 3.0, 'min_cfg_coef': 3.0}),
    'cfg annealed 10->1': ('cfg', {'max_cfg_coef': 10.0, 'min_cfg_coef': 1.0}),
    'cfg fixed 6': ('cfg', {'max_cfg_coef': 6.0, 'min_cfg_coef': 6.0}),
    'cfg annealed 6->1': ('cfg', {'max_cfg_coef': 6.0, 'min_cfg_coef': 1.0}),
    'temp 4 not annealed': ('temp', {'anneal_temp': False}),
    'temp 2': ('temp', {'temp': 2.0}),
    'temp 8': ('temp', {'temp': 8.0}),
    'top-p 0 (full)': ('top-p', {'top_p': 0.0}),
    'top-p 0.5': ('top-p', {'top_p': 0.5}),
}

# Annealed vs fixed guidance at the same largest coefficient, and the shipped annealing vs no guidance.
CFG_PAIRS = ((SHIPPED, 'cfg fixed 3'), ('cfg annealed 6->1', 'cfg fixed 6'), (SHIPPED, 'cfg off (1)'))


def held_out() -> list[writer.Clip]:
  indices = [i for i in range(CORPUS_CLIPS) if writer.split_of(writer.clip_id(i)) in ('valid', 'test')]
  return [(writer.clip_id(i), writer.make_clip(CORPUS_SEED, i, 16000, DURATION)) for i in indices]


def generate(pipeline, captions: list[str], batch: int, overrides: dict, desc: str) -> tuple[list[np.ndarray], float]:
  """(mono 16 kHz clips, seconds per clip without compilation); batch i's seed is its first caption's index."""
  decoding = pipeline.decoding_with(**overrides)
  clips, seconds = [], 0.0
  for start in tqdm.trange(0, len(captions), batch, desc=desc, unit='batch'):
    chunk = captions[start:start + batch]
    compiled = pipeline.compile_seconds
    begin = time.perf_counter()
    audio = pipeline.generate(chunk + [chunk[-1]] * (batch - len(chunk)), DURATION, seed=start, decoding=decoding)
    seconds += time.perf_counter() - begin - (pipeline.compile_seconds - compiled)
    clips.extend(a.mean(0) for a in audio[:len(chunk)])
  return clips, seconds / len(captions)


def _cell(interval: dict) -> str:
  return f"{interval['value']:.3g} [{interval['low']:.3g}, {interval['high']:.3g}]"


def _versus(c: dict) -> str:
  mark = '**' if c['significant'] else ''
  return f"{mark}{c['difference']:+.3g}{mark} (p={c['p_value']:.3f})"


def _table(meta: dict, results: dict) -> str:
  rows = ['| setting | forwards | s / clip | FAD [95% CI] | KAD [95% CI] | tag-KL [95% CI] | '
          'vs shipped: dFAD (p) | dKAD (p) | dKL (p) |', '|' + '---|' * 9]
  for name, r in results.items():
    versus = [_versus(r['vs_shipped'][m]) if 'vs_shipped' in r else '-' for m in METRICS]
    rows.append(f"| {name} | {r['forwards']} | {r['seconds_per_clip']:.2f} | "
                + ' | '.join(_cell(r['intervals'][m]) for m in METRICS) + ' | ' + ' | '.join(versus) + ' |')
  cfg = [n for n, r in results.items() if r['group'] in ('cfg', 'shipped')]
  rows += ['', '### Classifier-free guidance: fixed vs annealed (max -> min over each level\'s steps)', '',
           '| setting | max_cfg_coef | min_cfg_coef | FAD | KAD | tag-KL | vs shipped 3->1: dFAD (p) | dKAD (p) | '
           'dKL (p) |', '|' + '---|' * 9]
  for name in cfg:
    r = results[name]
    versus = [_versus(r['vs_shipped'][m]) if 'vs_shipped' in r else '-' for m in METRICS]
    rows.append(f"| {name} | {r['decoding']['max_cfg_coef']} | {r['decoding']['min_cfg_coef']} | "
                + ' | '.join(_cell(r['intervals'][m]) for m in METRICS) + ' | ' + ' | '.join(versus) + ' |')
  pairs = meta.get('cfg_pairs', {})
  if pairs:
    rows += ['', '| annealed vs fixed (same max) | dFAD (p) | dKAD (p) | dKL (p) |', '|---|---|---|---|']
    rows += [f"| {name} | " + ' | '.join(_versus(c[m]) for m in METRICS) + ' |' for name, c in pairs.items()]
  rows += ['', f"{meta['generated_clips']} clips per setting (same prompts and seeds), {meta['reference_clips']} "
           f"reference clips; intervals: {meta['draws']} bootstrap draws of the clips (seed 0), 95 %, recentred on "
           "the value (evaluation/bootstrap.py); **bold**: the paired difference is significant (p < 0.05). Floors: "
           f"held-out half vs the other half FAD {meta['floor_fad_halves']}, KAD {meta['floor_kad_halves']}; the "
           f"prompts' own {meta['generated_clips']} real clips vs all held-out clips FAD {meta['floor_fad_same_n']}, "
           f"KAD {meta['floor_kad_same_n']} (FAD is biased upwards for few clips; KAD is not)."]
  return '\n'.join(rows)


def _plot(results: dict, path: str) -> None:
  """A forest plot: one row per setting (its LM forwards per clip in the label: the cost that does not move with the
  machine's load), each metric's value and 95 % interval, the shipped value as a dashed line; a filled diamond marks
  a paired difference from shipped with p < 0.05."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  groups = list(dict.fromkeys(r['group'] for r in results.values()))
  colours = {g: f'C{i}' for i, g in enumerate(groups)}
  names = list(results)
  fig, axes = plt.subplots(1, 3, figsize=(16, 1.2 + 0.38 * len(names)), sharey=True)
  labels = {'fad': 'FAD (musicnn)', 'kad': 'KAD x100 (musicnn)', 'kl': 'tag-KL (musicnn)'}
  for ax, metric in zip(axes, METRICS, strict=True):
    for row, name in enumerate(names):
      r = results[name]
      i = r['intervals'][metric]
      significant = r.get('vs_shipped', {}).get(metric, {}).get('significant')
      ax.errorbar(i['value'], row, xerr=[[i['value'] - i['low']], [i['high'] - i['value']]],
                  fmt='D' if significant else 'o', c=colours[r['group']], ms=5, capsize=3)
    if SHIPPED in results:
      ax.axvline(results[SHIPPED]['intervals'][metric]['value'], c='grey', ls='--', lw=0.8)
    ax.set_xlabel(f'{labels[metric]}, lower is better')
    ax.grid(alpha=0.3, axis='x')
  axes[0].set_yticks(range(len(names)), [f"{n} ({results[n]['forwards']} fw)" for n in names], fontsize=8)
  axes[0].invert_yaxis()
  fig.suptitle('Embedded default per decoding setting: value and 95 % bootstrap interval (diamond: differs from '
               'shipped, paired p < 0.05)', fontsize=10)
  fig.tight_layout()
  atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format='png'))


def _write(out: str, meta: dict, results: dict) -> str:
  """Writes <out>.json, <out>.md and <out>.png; returns the Markdown."""
  os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
  text = json.dumps({'meta': meta, 'results': results}, indent=2) + '\n'
  atomic_write(out + '.json', lambda tmp: open(tmp, 'w').write(text))
  table = _table(meta, results) + '\n'
  atomic_write(out + '.md', lambda tmp: open(tmp, 'w').write(table))
  _plot(results, out + '.png')
  return table


def _floors(embedder_name: str, reference: quality.Embedded, n: int) -> dict:
  """FAD and KAD of real clips against real clips: the two halves of the held-out set, and the prompts' own n."""
  half = len(reference.names) // 2
  first, second = reference.subset(reference.names[:half]), reference.subset(reference.names[half:])
  own = reference.subset(reference.names[:n])
  return {'floor_fad_halves': round(fad(first.stats(), second.stats()), 3),
          'floor_kad_halves': round(kernel_audio_distance(first.embeddings, second.embeddings), 4),
          'floor_fad_same_n': round(fad(own.stats(), reference.stats()), 3),
          'floor_kad_same_n': round(kernel_audio_distance(own.embeddings, reference.embeddings), 4)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--clips', type=int, default=24)
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--draws', type=int, default=1000)
  parser.add_argument('--settings', default=','.join(SETTINGS), help='comma-separated names of SETTINGS')
  parser.add_argument('--reference_clips', type=int, default=None, help='only the first N held-out clips (a smoke run)')
  parser.add_argument('--out', default='benchmarks/results/quality_frontier')
  parser.add_argument('--redraw', action='store_true', help='only rewrite <out>.md and <out>.png from <out>.json')
  args = parser.parse_args()
  if args.redraw:
    saved = json.load(open(args.out + '.json'))
    print(_write(args.out, saved['meta'], saved['results']))
    return
  names = args.settings.split(',')
  unknown = [n for n in names if n not in SETTINGS]
  if unknown or not 2 <= args.clips <= 212 or not 1 <= args.batch <= 64:
    parser.error(f'unknown settings {unknown}, or --clips outside [2, 212] or --batch outside [1, 64]')
  bootstrap.check(args.draws, bootstrap.LEVEL)
  embedder = quality.MusicnnEmbedder(progress=True)
  clips = held_out()[:args.reference_clips]
  reference = embedder.embed([(n, c.audio) for n, c in clips], desc='reference')
  prompts = clips[:args.clips]
  pipeline = pretrained.load(os.path.join(os.path.dirname(quality.__file__), '..', 'assets', 'default'))
  meta = {'reference_clips': len(clips), 'generated_clips': len(prompts), 'batch': args.batch, 'draws': args.draws,
          'level': bootstrap.LEVEL, 'decoding': dataclasses.asdict(pipeline.decoding),
          **_floors(embedder.name, reference, args.clips)}
  print(f'reference: {len(clips)} clips; floors {meta}', flush=True)
  results, measured = {}, {}
  table = ''
  for name in names:
    group, overrides = SETTINGS[name]
    audio, seconds = generate(pipeline, [c.description for _, c in prompts], args.batch, overrides, name)
    generated = embedder.embed([(n, a) for (n, _), a in zip(prompts, audio, strict=True)], desc=name)
    measured[name] = generated
    decoding = pipeline.decoding_with(**overrides)
    found = quality.intervals(generated, reference, METRICS, args.draws)
    results[name] = {'group': group, 'overrides': {k: list(v) if isinstance(v, tuple) else v
                                                   for k, v in overrides.items()},
                     'decoding': dataclasses.asdict(decoding), 'forwards': sum(decoding.decoding_steps),
                     'seconds_per_clip': round(seconds, 3),
                     'intervals': {m: i.as_dict() for m, i in found.items()}}
    if name != SHIPPED and SHIPPED in measured:
      versus = quality.compare(generated, measured[SHIPPED], reference, METRICS, args.draws)
      results[name]['vs_shipped'] = {m: c.as_dict() for m, c in versus.items()}
    for a, b in CFG_PAIRS:
      if name in (a, b) and a in measured and b in measured:
        versus = quality.compare(measured[a], measured[b], reference, METRICS, args.draws)
        meta.setdefault('cfg_pairs', {})[f'{a} - {b}'] = {m: c.as_dict() for m, c in versus.items()}
    print(name, {m: str(i) for m, i in found.items()}, f'{seconds:.2f} s/clip', flush=True)
    table = _write(args.out, meta, results)
  print(table)


if __name__ == '__main__':
  main()
