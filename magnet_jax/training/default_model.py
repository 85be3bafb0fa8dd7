"""The embedded default model (magnet_jax/assets/default) rebuilt from nothing: the library behind

  python -m magnet_jax.apps.default_model [--workdir DIR] [--num-clips 2000] [--seed 0] [--out DIR] [--config.X=Y ...]

Steps, each logged and run in this process into --workdir (an interrupted build continues there: a step whose
output is complete is skipped, training resumes from its checkpoint):
  1. corpus: `corpus.generate_corpus` (as `python -m magnet_jax.apps.corpus`) into WORKDIR/corpus
  2. tokens: `data.prepare.prepare` with the embedded codec and cached MiniLM text states into WORKDIR/tokens
  3. train:  `training.trainer.train` with configs/default_model.py (and the --config.X=Y overrides) into WORKDIR/train
  4. export: the trained LM, the codec and MiniLM as a pipeline folder (`pretrained.save_pipeline`) with
             `DECODING` as its decoding defaults and the build's facts (steps, times, final losses, prompt-following
             statistics) in pipeline.json's metadata. The LM is stored in float32.
Into the shipped folder only pipeline.json and lm.safetensors are written: its codec/ is the embedded codec itself
(`EMBEDDED_CODEC_DIR`, built by configs/codec_default.py), which the tokens were made with.
"""
import functools
import glob
import json
import os
import shlex
import shutil
import time
from collections.abc import Callable, Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags

from magnet_jax import codec, configs
from magnet_jax.corpus import generate_corpus
from magnet_jax.data.builder import SegmentOptions
from magnet_jax.data.prepare import CodecSource, prepare
from magnet_jax.decoding import DecodingConfig
from magnet_jax.evaluation.prompt_following import evaluate, separation
from magnet_jax.generation import pretrained
from magnet_jax.generation.pipeline import MagnetPipeline
from magnet_jax.io import params as params_io
from magnet_jax.io.files import atomic_write
from magnet_jax.text import TextEncoder
from magnet_jax.training import trainer
from magnet_jax.training.checkpointing import Checkpointer

CONFIG_FILE = os.path.join(os.path.dirname(configs.__file__), 'default_model.py')
BUILD_COMMAND = 'python -m magnet_jax.apps.default_model'
TEXT_ENCODER = 'minilm'
CLIP_SECONDS = 5.0  # corpus clips and training segments
# Decoding defaults of the shipped model (pipeline.json): fewer steps and a lower CFG than audiocraft's defaults
# separate the `evaluation.prompt_following` contrasts at least as well on this model, in half the time.
DECODING = DecodingConfig(decoding_steps=(10, 5, 5, 5), temp=4.0, top_p=0.9, max_cfg_coef=3.0, min_cfg_coef=1.0)


def _log(message: str) -> None:
  print(f'[embedded] {message}', flush=True)


def load_config(overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """configs/default_model.py with `--config.X=Y` overrides, exactly as train.py reads it."""
  argv = [BUILD_COMMAND, f'--config={CONFIG_FILE}', *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config file', flag_values=values, lock_config=True, sys_argv=argv)
  values(argv)
  return values.config


class _BuildSteps:
  """Runs each build step once per workdir and keeps what it did and its wall time in WORKDIR/build.json."""

  def __init__(self, workdir: str):
    self._path = os.path.join(workdir, 'build.json')
    self.record = params_io.load_json(self._path) if os.path.isfile(self._path) else {}

  def run(self, name: str, what: str, step: Callable[[], object], done: bool) -> None:
    if done:
      _log(f'{name}: already done in {os.path.dirname(self._path)}')
      return
    _log(f'{name}: {what}')
    start = time.perf_counter()
    step()
    previous = self.record.get(name, {}).get('seconds', 0.0)  # a resumed step adds to its first part
    self.record[name] = {'what': what, 'seconds': round(previous + time.perf_counter() - start, 1)}
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
    overrides: `--config.X=Y` overrides of configs/default_model.py (e.g. a shorter smoke build).
  """
  workdir = os.path.abspath(workdir)
  corpus_dir, tokens_dir, train_dir = (os.path.join(workdir, name) for name in ('corpus', 'tokens', 'train'))
  os.makedirs(workdir, exist_ok=True)
  config = load_config([*overrides, f'--config.data.dir={tokens_dir}'])
  steps = _BuildSteps(workdir)
  sample_rate = codec.load_codec(codec_dir)[0].sample_rate
  steps.run('corpus', f'{num_clips} clips, seed {seed}, {sample_rate} Hz, {CLIP_SECONDS:g} s',
            functools.partial(generate_corpus, corpus_dir, num_clips, seed, sample_rate, CLIP_SECONDS, workers),
            os.path.isfile(os.path.join(corpus_dir, 'manifest.jsonl')))
  steps.run('tokens', f'codec {codec_dir}, text {TEXT_ENCODER} (cached), {CLIP_SECONDS:g} s segments',
            functools.partial(prepare, corpus_dir, tokens_dir, CodecSource(folder=codec_dir),
                              SegmentOptions(CLIP_SECONDS), TEXT_ENCODER, cache_text=True),
            bool(glob.glob(os.path.join(tokens_dir, '*', '*', 'dataset_info.json'))))
  checkpoint = _latest_step(train_dir)
  steps.run('train', f'configs/default_model.py {shlex.join(overrides)}'.strip(),
            functools.partial(trainer.train, config, train_dir, resume=checkpoint is not None),
            checkpoint == config.train.num_steps)

  state, _ = trainer.restore_state(config, train_dir)
  codec_config, codec_params = codec.load_codec(codec_dir)
  pipeline = MagnetPipeline(trainer.validate(config), state.params, codec_config, codec_params,
                            TextEncoder.minilm(), decoding=DECODING, duration=CLIP_SECONDS)
  start = time.perf_counter()
  _, stats = evaluate(pipeline)
  metadata = {
      'source': ('a tiny MAGNeT trained on the embedded codec\'s tokens of the procedural corpus '
                 '(configs/default_model.py)'),
      'build_command': f'{BUILD_COMMAND} ' + shlex.join(['--workdir', workdir, '--num-clips', str(num_clips),
                                                          '--seed', str(seed), *overrides]),
      'corpus': {'num_clips': num_clips, 'seed': seed, 'clip_seconds': CLIP_SECONDS},
      'steps': steps.record, 'train': _final_metrics(train_dir), 'lm_dtype': 'float32',
      'prompt_following': {'seeds': [0, 1, 2, 3], 'separation': separation(stats), 'stats': stats,
                           'seconds': round(time.perf_counter() - start, 1)}}
  export_dir = os.path.join(workdir, 'export')
  pretrained.save_pipeline(export_dir, pipeline, TEXT_ENCODER, **metadata)
  _install(export_dir, out, codec_dir)
  _log(f'wrote {out}: {json.dumps(metadata["train"])}; {json.dumps(metadata["prompt_following"]["separation"])}')
  return metadata
