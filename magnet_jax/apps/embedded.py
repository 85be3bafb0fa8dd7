"""The embedded default model (magnet_jax/assets/default): its one-command rebuild and its prompt-following check.

  python -m magnet_jax.apps.embedded build [--workdir DIR] [--num-clips 2000] [--seed 0] [--out DIR] [--config.X=Y ...]
  python -m magnet_jax.apps.embedded evaluate [--folder DIR] [--seeds 0 1 2 3] [--set temp=2.0 ...]

`build` runs the project's own commands, each logged, into --workdir (an interrupted build continues there: a
stage whose output is complete is skipped, training resumes from its checkpoint):
  1. corpus: python -m magnet_jax.corpus --out WORKDIR/corpus --num-clips N --seed S
  2. tokens: python -m magnet_jax.apps.prepare --audio WORKDIR/corpus --out WORKDIR/tokens --codec CODEC
             --text minilm --cache-text --segment-duration 5
  3. train:  python train.py --config=configs/embedded.py --workdir=WORKDIR/train --config.data.dir=WORKDIR/tokens
  4. export: the trained LM, the codec and MiniLM as a pipeline folder (`pretrained.save_pipeline`) with
             `DECODING` as its decoding defaults and the build's facts (commands, stage times, final losses,
             prompt-following statistics) in pipeline.json's metadata. The LM is stored in float32.
Into the shipped folder only pipeline.json and lm.safetensors are written: its codec/ is the embedded codec itself
(`EMBEDDED_CODEC_DIR`, built by configs/codec_default.py), which the tokens were made with.

`evaluate` generates the `CONTRASTS` captions for several seeds and prints the statistics that should separate
them (tests/test_embedded.py checks them on the shipped model).
"""
import argparse
import dataclasses
import functools
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
from absl import flags
from ml_collections import config_flags

from magnet_jax import codec
from magnet_jax.audio import audio_stats
from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import pretrained
from magnet_jax.generation.pipeline import MagnetPipeline
from magnet_jax.io import params as params_io
from magnet_jax.io.files import atomic_write
from magnet_jax.text import TextEncoder
from magnet_jax.training import trainer
from magnet_jax.training.checkpointing import Checkpointer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILE = 'configs/embedded.py'
BUILD_COMMAND = 'python -m magnet_jax.apps.embedded build'
TEXT_ENCODER = 'minilm'
CLIP_SECONDS = 5.0  # corpus clips and training segments
# Decoding defaults of the shipped model (pipeline.json), chosen by prompt-following on CONTRASTS over seeds 0-7.
# Drum-groove vs pad-drone onset rates (1/s, min-max over seeds): audiocraft's defaults (20, 10, 10, 10) steps,
# temp 3, CFG 10 -> 1: 2.0-4.0 vs 0.2-0.6; CFG 3: 2.4-4.0 vs 0.2-0.6; CFG 3, temp 4: 3.0-5.0 vs 0.4-0.6; and with
# (10, 5, 5, 5) steps 3.6-4.8 vs 0.4-0.6 (the corpus' grooves: 2.6-6.2) in half the time. Lower temperatures
# (1.5, 2) weaken the drums (0.4-2.2). Flute vs bass centroids separate under all of them (1.7-1.9 kHz vs 190-230 Hz).
DECODING = DecodingConfig(decoding_steps=(10, 5, 5, 5), temp=4.0, top_p=0.9, max_cfg_coef=3.0, min_cfg_coef=1.0)


@dataclasses.dataclass(frozen=True)
class Contrast:
  """Two captions whose generated audio one statistic (a key of `audio.audio_stats`) tells apart: it is higher
  for `high` than for `low`, as it is on the corpus clips they describe."""
  statistic: str
  high: str
  low: str


CONTRASTS = (
    Contrast('onset_rate', 'fast drum groove with bass at 140 bpm', 'ambient pad drone in D major, no drums'),
    Contrast('centroid_hz', 'solo flute in G major', 'slow solo bass in E minor'),
)


def contrast_captions() -> list[str]:
  """Every caption of `CONTRASTS`, high then low."""
  return [caption for c in CONTRASTS for caption in (c.high, c.low)]


def evaluate(pipeline: MagnetPipeline, seeds: Sequence[int] = (0, 1, 2, 3), duration: float | None = None,
             **sampling) -> tuple[np.ndarray, dict[str, list[dict[str, float]]]]:
  """Generates every contrast caption for every seed in one batched call.

  Args:
    pipeline: the model.
    seeds: one generation per caption and seed.
    duration: seconds (default: the pipeline's).
    **sampling: DecodingConfig overrides.

  Returns:
    (audio [captions * seeds, C, N], caption-major; {caption: [`audio.audio_stats` of each seed's audio]}).
  """
  captions = contrast_captions()
  audio = pipeline.generate([c for c in captions for _ in seeds], duration, seed=[s for _ in captions for s in seeds],
                            **sampling)
  clips = audio.mean(axis=1).reshape(len(captions), len(seeds), -1)
  return audio, {c: [audio_stats(clip, pipeline.sample_rate) for clip in per_seed]
                 for c, per_seed in zip(captions, clips, strict=True)}


def separation(stats: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
  """Per contrast statistic: the median and extreme values of its high and low captions over the seeds."""
  summary = {}
  for c in CONTRASTS:
    high = [s[c.statistic] for s in stats[c.high]]
    low = [s[c.statistic] for s in stats[c.low]]
    summary[c.statistic] = {'high_median': float(np.median(high)), 'low_median': float(np.median(low)),
                            'high_min': float(np.min(high)), 'low_max': float(np.max(low))}
  return summary


def _log(message: str) -> None:
  print(f'[embedded] {message}', flush=True)


def _run(command: list[str]) -> None:
  _log('$ ' + shlex.join(command))
  subprocess.run(command, check=True, cwd=REPO_ROOT)


def load_config(overrides: Sequence[str] = ()):
  """configs/embedded.py with `--config.X=Y` overrides, exactly as train.py reads it."""
  if REPO_ROOT not in sys.path:
    sys.path.append(REPO_ROOT)  # configs/ imports its base as `configs.base`, as when train.py runs
  argv = [BUILD_COMMAND, f'--config={os.path.join(REPO_ROOT, CONFIG_FILE)}', *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config file', flag_values=values, lock_config=True, sys_argv=argv)
  values(argv)
  return values.config


class _Stages:
  """Runs each stage once per workdir and keeps their commands and wall times in WORKDIR/build.json."""

  def __init__(self, workdir: str):
    self._path = os.path.join(workdir, 'build.json')
    self.record = params_io.load_json(self._path) if os.path.isfile(self._path) else {}

  def run(self, name: str, command: list[str], done: bool) -> None:
    if done:
      _log(f'{name}: already done in {os.path.dirname(self._path)}')
      return
    start = time.perf_counter()
    _run(command)
    previous = self.record.get(name, {}).get('seconds', 0.0)  # a resumed stage adds to its first part
    self.record[name] = {'command': shlex.join(command), 'seconds': round(previous + time.perf_counter() - start, 1)}
    params_io.save_json(self._path, self.record)


def _latest_step(train_dir: str) -> int | None:
  if not os.path.isdir(os.path.join(train_dir, 'checkpoints')):
    return None
  checkpointer = Checkpointer(train_dir, 1)
  step = checkpointer.latest_step()
  checkpointer.close()
  return step


def _final_metrics(train_dir: str) -> dict:
  with open(os.path.join(train_dir, 'metrics.jsonl')) as f:
    last = json.loads(f.read().splitlines()[-1])
  keys = ('step', 'loss', 'accuracy', *sorted(k for k in last if k.startswith('loss_level_')))
  return {k: last[k] for k in keys}


def _install(export_dir: str, out: str, codec_dir: str) -> None:
  """Copies the exported pipeline.json and lm.safetensors into `out`, and the codec folder unless `out/codec` is it."""
  os.makedirs(out, exist_ok=True)
  for name in (pretrained.PIPELINE_FILE, 'lm.safetensors'):
    atomic_write(os.path.join(out, name), functools.partial(shutil.copyfile, os.path.join(export_dir, name)))
  target = os.path.join(out, 'codec')
  if os.path.realpath(target) != os.path.realpath(codec_dir):
    shutil.copytree(codec_dir, target, dirs_exist_ok=True)


def build(workdir: str, out: str = pretrained.EMBEDDED_DIR, num_clips: int = 2000, seed: int = 0,
          codec_dir: str = codec.EMBEDDED_CODEC_DIR, workers: int = 2, overrides: Sequence[str] = ()) -> dict:
  """Rebuilds the embedded default from nothing into `out` (see the module docstring); returns pipeline.json's
  metadata.

  Args:
    workdir: folder of the intermediate results (corpus, tokens, training run, export); reused when rerun.
    out: the pipeline folder to write.
    num_clips, seed: the corpus (its train split trains the LM).
    codec_dir: the codec folder that tokenizes the corpus and decodes the LM's tokens.
    workers: corpus rendering processes.
    overrides: `--config.X=Y` flags for train.py (e.g. a shorter smoke build).
  """
  if not os.path.isfile(os.path.join(REPO_ROOT, 'train.py')):
    raise FileNotFoundError(f'{BUILD_COMMAND} runs from a source checkout: {REPO_ROOT}/train.py is missing')
  workdir = os.path.abspath(workdir)
  corpus_dir, tokens_dir, train_dir = (os.path.join(workdir, name) for name in ('corpus', 'tokens', 'train'))
  os.makedirs(workdir, exist_ok=True)
  config = load_config(overrides)
  stages = _Stages(workdir)
  py = sys.executable
  stages.run('corpus', [py, '-m', 'magnet_jax.corpus', '--out', corpus_dir, '--num-clips', str(num_clips), '--seed',
                        str(seed), '--sample-rate', str(codec.load_codec(codec_dir)[0].sample_rate), '--duration',
                        str(CLIP_SECONDS), '--workers', str(workers)],
             os.path.isfile(os.path.join(corpus_dir, 'manifest.jsonl')))
  stages.run('tokens', [py, '-m', 'magnet_jax.apps.prepare', '--audio', corpus_dir, '--out', tokens_dir, '--codec',
                        codec_dir, '--text', TEXT_ENCODER, '--cache-text', '--segment-duration', str(CLIP_SECONDS)],
             bool(glob.glob(os.path.join(tokens_dir, '*', '*', 'dataset_info.json'))))
  checkpoint = _latest_step(train_dir)
  stages.run('train', [py, 'train.py', f'--config={CONFIG_FILE}', f'--workdir={train_dir}',
                       f'--config.data.dir={tokens_dir}', *overrides, *(['--resume'] if checkpoint else [])],
             checkpoint == config.train.num_steps)

  state, _ = trainer.restore_state(config, train_dir)
  codec_config, codec_params = codec.load_codec(codec_dir)
  pipeline = MagnetPipeline(trainer.validate(config), state.params, codec_config, codec_params,
                            TextEncoder.minilm(), decoding=DECODING, duration=CLIP_SECONDS)
  start = time.perf_counter()
  _, stats = evaluate(pipeline)
  metadata = {
      'source': f'a tiny MAGNeT trained on the embedded codec\'s tokens of the procedural corpus ({CONFIG_FILE})',
      'build_command': f'{BUILD_COMMAND} ' + shlex.join(['--workdir', workdir, '--num-clips', str(num_clips),
                                                          '--seed', str(seed), *overrides]),
      'corpus': {'num_clips': num_clips, 'seed': seed, 'clip_seconds': CLIP_SECONDS},
      'stages': stages.record, 'train': _final_metrics(train_dir), 'lm_dtype': 'float32',
      'prompt_following': {'seeds': [0, 1, 2, 3], 'separation': separation(stats), 'stats': stats,
                           'seconds': round(time.perf_counter() - start, 1)}}
  export_dir = os.path.join(workdir, 'export')
  pretrained.save_pipeline(export_dir, pipeline, TEXT_ENCODER, **metadata)
  _install(export_dir, out, codec_dir)
  _log(f'wrote {out}: {json.dumps(metadata["train"])}; {json.dumps(metadata["prompt_following"]["separation"])}')
  return metadata


def _print_stats(stats: dict[str, list[dict[str, float]]]) -> None:
  for caption, per_seed in stats.items():
    cells = '  '.join(f'{name} ' + ' '.join(f'{s[name]:.3g}' for s in per_seed) for name in per_seed[0])
    print(f'{caption:45s} {cells}')
  print(json.dumps(separation(stats), indent=1))


def _sampling(items: Sequence[str]) -> dict:
  """['temp=2', 'decoding_steps=[8,4,4,4]'] -> {'temp': 2, 'decoding_steps': [8, 4, 4, 4]} (JSON values)."""
  return {key: json.loads(value) for key, _, value in (item.partition('=') for item in items)}


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog='python -m magnet_jax.apps.embedded', description=__doc__.split('\n')[0])
  commands = parser.add_subparsers(dest='command', required=True)
  make = commands.add_parser('build', help='rebuild the embedded default from nothing')
  make.add_argument('--workdir', default=os.path.join('/tmp', 'magnet-embedded'), help='intermediate results')
  make.add_argument('--out', default=pretrained.EMBEDDED_DIR, help='pipeline folder to write')
  make.add_argument('--num-clips', type=int, default=2000, help='corpus clips')
  make.add_argument('--seed', type=int, default=0, help='corpus seed')
  make.add_argument('--codec', default=codec.EMBEDDED_CODEC_DIR, help='codec folder')
  make.add_argument('--workers', type=int, default=2, help='corpus rendering processes')
  check = commands.add_parser('evaluate', help='prompt-following statistics of a pipeline folder')
  check.add_argument('--folder', default=None, help='pipeline folder (default: the embedded one)')
  check.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3])
  check.add_argument('--duration', type=float, default=None, help='seconds (default: the pipeline\'s)')
  check.add_argument('--set', nargs='*', default=[], metavar='NAME=JSON', help='decoding overrides')
  args, rest = parser.parse_known_args(argv)
  if args.command == 'build':
    unknown = [a for a in rest if not a.startswith('--config.')]
    if unknown:
      parser.error(f'unrecognized arguments: {" ".join(unknown)} (train.py overrides are --config.X=Y)')
    build(args.workdir, args.out, args.num_clips, args.seed, args.codec, args.workers, rest)
    return
  if rest:
    parser.error(f'unrecognized arguments: {" ".join(rest)}')
  pipeline = pretrained.load(args.folder)
  start = time.perf_counter()
  _, stats = evaluate(pipeline, args.seeds, args.duration, **_sampling(args.set))
  _print_stats(stats)
  print(f'{len(stats) * len(args.seeds)} clips in {time.perf_counter() - start:.1f} s (compilation included)')


if __name__ == '__main__':
  main()
