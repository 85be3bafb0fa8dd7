"""The embedded default's quality at speed: FAD and tag-KL (musicnn) against held-out corpus clips, per setting.

  nice python -m benchmarks.quality_frontier [--clips 32] [--batch 8] [--out benchmarks/results/quality_frontier]

References: the held-out clips (valid + test splits) of the corpus the default was trained on (seed 0, 2000 clips,
16 kHz, 5 s). Each setting generates 5 s from the captions of the first --clips held-out clips (seed 0) and is
scored against all held-out clips: FAD over musicnn patches, tag-KL paired with the clip whose caption was used.
Latency is seconds of generation per clip (batch --batch, compile excluded) on this machine. Writes <out>.json,
<out>.md (the tables) and <out>.png (the frontier).
"""
import argparse
import dataclasses
import json
import os
import time

import numpy as np

from magnet_jax.corpus import writer
from magnet_jax.evaluation import quality
from magnet_jax.evaluation.metrics import fad
from magnet_jax.generation import pretrained
from magnet_jax.io.files import atomic_write

CORPUS_SEED, CORPUS_CLIPS, DURATION = 0, 2000, 5.0
SHIPPED = {'decoding_steps': (10, 5, 5, 5)}
SETTINGS = {  # name -> DecodingConfig overrides of the embedded default's own decoding config
    'steps 20/10/10/10': {'decoding_steps': (20, 10, 10, 10)},
    'steps 10/5/5/5 (shipped)': SHIPPED,
    'steps 6/3/3/3': {'decoding_steps': (6, 3, 3, 3)},
    'steps 4/2/2/2': {'decoding_steps': (4, 2, 2, 2)},
    'steps 2/1/1/1': {'decoding_steps': (2, 1, 1, 1)},
    'steps 10/5/5/5 stride1': {**SHIPPED, 'span_arrangement': 'stride1'},
    'steps 4/2/2/2 stride1': {'decoding_steps': (4, 2, 2, 2), 'span_arrangement': 'stride1'},
    'cfg 1 (off)': {**SHIPPED, 'max_cfg_coef': 1.0, 'min_cfg_coef': 1.0},
    'cfg 6->1': {**SHIPPED, 'max_cfg_coef': 6.0},
    'temp 2': {**SHIPPED, 'temp': 2.0},
    'temp 6': {**SHIPPED, 'temp': 6.0},
}


def held_out() -> list[writer.Clip]:
  indices = [i for i in range(CORPUS_CLIPS) if writer.split_of(writer.clip_id(i)) in ('valid', 'test')]
  return [(writer.clip_id(i), writer.make_clip(CORPUS_SEED, i, 16000, DURATION)) for i in indices]


def _family(clip: writer.Clip) -> str:
  return clip.arrangement.category


def generate(pipeline, captions: list[str], batch: int, overrides: dict) -> tuple[list[np.ndarray], float]:
  """(mono 16 kHz clips, seconds per clip without compilation)."""
  decoding = pipeline.decoding_with(**overrides)
  clips, seconds = [], 0.0
  for start in range(0, len(captions), batch):
    chunk = captions[start:start + batch]
    compiled = pipeline.compile_seconds
    begin = time.perf_counter()
    audio = pipeline.generate(chunk + [chunk[-1]] * (batch - len(chunk)), DURATION, seed=start, decoding=decoding)
    seconds += time.perf_counter() - begin - (pipeline.compile_seconds - compiled)
    clips.extend(a.mean(0) for a in audio[:len(chunk)])
  return clips, seconds / len(captions)


def score(embedder, generated: quality.Embedded, reference: quality.Embedded, families: dict[str, str],
          ref_families: dict[str, str], ref_patches: dict[str, np.ndarray], gen_patches: dict[str, np.ndarray]):
  """{'fad', 'kl', 'families': {family: {'fad', 'kl', 'n'}}}."""
  out = {'fad': round(fad(generated.stats(), reference.stats()), 3),
         'kl': round(quality.tag_kl(generated, reference)[0], 4), 'families': {}}
  for family in sorted(set(families.values())):
    names = [n for n in generated.names if families[n] == family]
    ref_names = [n for n in reference.names if ref_families[n] == family]
    gen = quality.Embedded(names, np.concatenate([gen_patches[n] for n in names]),
                           generated.subset(names).label_probs, 0.0, embedder.name)
    ref = quality.Embedded(ref_names, np.concatenate([ref_patches[n] for n in ref_names]),
                           reference.subset(ref_names).label_probs, 0.0, embedder.name)
    out['families'][family] = {'n': len(names), 'kl': round(quality.tag_kl(gen, ref)[0], 4),
                               'fad': round(fad(gen.stats(), ref.stats()), 2) if len(names) > 1 else None}
  return out


def _per_clip(embedded: quality.Embedded, patches_per_clip: int) -> dict[str, np.ndarray]:
  return {n: embedded.embeddings[i * patches_per_clip:(i + 1) * patches_per_clip] for i, n in enumerate(embedded.names)}


def _plot(results: dict, path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  for ax, metric in zip(axes, ('fad', 'kl'), strict=True):
    for name, r in results.items():
      steps = name.startswith('steps') and 'stride1' not in name
      ax.scatter(r['seconds_per_clip'], r[metric], c='C0' if steps else 'C1', marker='o' if steps else 's')
      ax.annotate(name.replace(' (shipped)', '*'), (r['seconds_per_clip'], r[metric]), fontsize=7,
                  xytext=(3, 3), textcoords='offset points')
    line = sorted((r['seconds_per_clip'], r[metric]) for n, r in results.items()
                  if n.startswith('steps') and 'stride1' not in n)
    ax.plot(*zip(*line, strict=True), c='C0', lw=0.8)
    ax.set_xlabel('seconds per 5 s clip (CPU, compile excluded)')
    ax.set_ylabel({'fad': 'FAD (musicnn, lower is better)', 'kl': 'tag-KL (musicnn, lower is better)'}[metric])
    ax.grid(alpha=0.3)
  fig.suptitle('Embedded default: quality vs latency (* = shipped 10/5/5/5)')
  fig.tight_layout()
  atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format='png'))


def _table(reference_fad: float, floor_n: float, results: dict) -> str:
  families = sorted(next(iter(results.values()))['families'])
  rows = ['| setting | forwards | s / clip | FAD | tag-KL | ' + ' | '.join(f'{f} FAD / KL' for f in families) + ' |',
          '|' + '---|' * (5 + len(families))]
  for name, r in results.items():
    fams = ' | '.join(f"{r['families'][f]['fad']} / {r['families'][f]['kl']}" for f in families)
    rows.append(f"| {name} | {r['forwards']} | {r['seconds_per_clip']:.2f} | {r['fad']} | {r['kl']} | {fams} |")
  n = {f: next(iter(results.values()))['families'][f]['n'] for f in families}
  rows.append(f'\nClips per family: {n}. FAD floors: held-out half vs the other half {reference_fad}; the '
              f'prompts\' own {sum(n.values())} real clips vs all held-out clips {floor_n} (FAD is biased upwards '
              'for few clips).')
  return '\n'.join(rows)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--clips', type=int, default=16)
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--settings', default=','.join(SETTINGS), help='comma-separated names of SETTINGS')
  parser.add_argument('--out', default='benchmarks/results/quality_frontier')
  args = parser.parse_args()
  embedder = quality.MusicnnEmbedder(progress=False)
  clips = held_out()
  start = time.perf_counter()
  reference = embedder.embed([(n, c.audio) for n, c in clips], desc='reference')
  embed_rate = reference.seconds / (time.perf_counter() - start)
  per = reference.embeddings.shape[0] // len(clips)
  ref_patches = _per_clip(reference, per)
  ref_families = {n: _family(c) for n, c in clips}
  half = len(clips) // 2  # the floor: one half of the held-out clips against the other
  floor = fad(quality.Embedded([], np.concatenate([ref_patches[n] for n, _ in clips[:half]]), np.zeros((0, 50)), 0,
                               embedder.name).stats(),
              quality.Embedded([], np.concatenate([ref_patches[n] for n, _ in clips[half:]]), np.zeros((0, 50)), 0,
                               embedder.name).stats())
  print(f'reference: {len(clips)} clips embedded at {embed_rate:.1f} s of audio per second', flush=True)
  # The same number of real held-out clips (the prompts' own) against all held-out clips: FAD's small-sample floor.
  floor_n = fad(quality.Embedded([], np.concatenate([ref_patches[n] for n, _ in clips[:args.clips]]),
                                 np.zeros((0, 50)), 0, embedder.name).stats(), reference.stats())
  # The shipped default's folder (pretrained.EMBEDDED_DIR still points into generation/ after the package regroup).
  pipeline = pretrained.load(os.path.join(os.path.dirname(quality.__file__), '..', 'assets', 'default'))
  prompts = clips[:args.clips]
  meta = {'reference_clips': len(clips), 'generated_clips': len(prompts), 'batch': args.batch,
          'embed_seconds_of_audio_per_second': round(embed_rate, 1), 'reference_floor_fad': round(floor, 3),
          'floor_fad_same_n': round(floor_n, 3), 'decoding': dataclasses.asdict(pipeline.decoding)}
  results = {}
  for name in args.settings.split(','):
    overrides = SETTINGS[name]
    audio, seconds = generate(pipeline, [c.description for _, c in prompts], args.batch, overrides)
    generated = embedder.embed([(n, a) for (n, _), a in zip(prompts, audio, strict=True)], desc=name)
    decoding = pipeline.decoding_with(**overrides)
    results[name] = {'overrides': {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
                     'forwards': sum(decoding.decoding_steps), 'seconds_per_clip': round(seconds, 3),
                     **score(embedder, generated, reference, {n: _family(c) for n, c in prompts}, ref_families,
                             ref_patches, _per_clip(generated, per))}
    print(name, {k: v for k, v in results[name].items() if k != 'families'}, flush=True)
    table = _write(args.out, meta, results)  # after every setting: a run cut short keeps what it measured
  print(table)


def _write(out: str, meta: dict, results: dict) -> str:
  """Writes <out>.json, <out>.md and <out>.png; returns the Markdown."""
  os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
  text = json.dumps({'meta': meta, 'results': results}, indent=2) + '\n'
  atomic_write(out + '.json', lambda tmp: open(tmp, 'w').write(text))
  table = _table(meta['reference_floor_fad'], meta['floor_fad_same_n'], results) + \
      f"\nmusicnn embedding: {meta['embed_seconds_of_audio_per_second']} s of audio per second.\n"
  atomic_write(out + '.md', lambda tmp: open(tmp, 'w').write(table))
  _plot(results, out + '.png')
  return table


if __name__ == '__main__':
  main()
