"""The shipped embedded default (magnet_jax/assets/default): it loads without torch or downloads, was built from
configs/default_model.py with the embedded codec, and its sound follows the prompt across seeds."""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from magnet_jax import codec
from magnet_jax.audio import rms_db
from magnet_jax.evaluation import prompt_following
from magnet_jax.generation import pretrained
from magnet_jax.io import params as params_io
from magnet_jax.training import default_model, trainer
from tests.helpers import load_config, without

SEEDS = (0, 1, 2, 3)
# The shipped model with these seeds on the build machine (pipeline.json's metadata.prompt_following), per seed:
#   onset_rate (1/s)  'fast drum groove with bass at 140 bpm'    4.2  3.6  3.8  4.2   (corpus grooves 2.6-6.2)
#                     'ambient pad drone in D major, no drums'   0.4  0.4  0.6  0.6   (corpus pads 0-0.2)
#   centroid_hz       'solo flute in G major'                   1808 1820 1822 1851   (corpus 1090-2260)
#                     'slow solo bass in E minor'                213  211  215  203   (corpus 148-347)
# Each bound lies between the two captions' medians with a wide margin on both sides (a CPU with other rounding
# samples some other tokens), and every seed of the high caption must beat every seed of the low one.
BOUNDS = {'onset_rate': 2.0, 'centroid_hz': 600.0}
LOUDNESS_MIN_DB = -35.0  # measured: -10 to -18 dBFS


@pytest.fixture(scope='module')
def pipeline():
  return pretrained.load(None)


@pytest.fixture(scope='module')
def contrasts(pipeline):
  """(audio [captions * seeds, C, N], {caption: per-seed statistics}) of one batched call."""
  return prompt_following.evaluate(pipeline, SEEDS)


def test_shipped_default_loads_without_torch():
  code = (without('torch', 'transformers') +
          "from magnet_jax import pretrained\n"
          "p = pretrained.load(None)\n"
          "print(p.sample_rate, p.lm_config.card, p.text_encoder.dim)")
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
  assert result.stdout.split() == ['16000', '256', '384']


def test_shipped_default_is_built_from_its_config_with_the_embedded_codec(pipeline):
  spec = params_io.load_json(os.path.join(pretrained.EMBEDDED_DIR, pretrained.PIPELINE_FILE))
  model = trainer.validate(load_config('default_model'))
  assert dataclasses.replace(pipeline.lm_config, dtype=model.dtype) == model
  assert spec['text_encoder'] == default_model.TEXT_ENCODER
  assert pipeline.decoding == default_model.DECODING
  assert os.path.samefile(os.path.join(pretrained.EMBEDDED_DIR, 'codec'), codec.EMBEDDED_CODEC_DIR)
  facts = spec['metadata']
  assert facts['build_command'].startswith(default_model.BUILD_COMMAND)
  assert facts['train']['step'] == load_config('default_model').train.num_steps


def test_outputs_are_finite_audible_and_of_the_default_length(pipeline, contrasts):
  audio, _ = contrasts
  frames = pipeline.frames(pipeline.duration, pipeline.decoding)
  assert pipeline.sample_rate == 16000 and frames == 252  # 5 s at 50 Hz, rounded up to whole 3-frame spans
  clips = len(prompt_following.contrast_captions()) * len(SEEDS)
  assert audio.shape == (clips, 1, 5 * 16000)  # exactly 5 s, one window
  assert np.isfinite(audio).all()
  assert min(rms_db(clip) for clip in audio) > LOUDNESS_MIN_DB


@pytest.mark.parametrize('contrast', prompt_following.CONTRASTS, ids=lambda c: c.statistic)
def test_sound_follows_the_prompt(contrasts, contrast):
  _, stats = contrasts
  high = [s[contrast.statistic] for s in stats[contrast.high]]
  low = [s[contrast.statistic] for s in stats[contrast.low]]
  assert np.median(high) > BOUNDS[contrast.statistic] > np.median(low), (high, low)
  assert min(high) > max(low), (high, low)


def test_build_runs_every_step_once_and_exports_a_loadable_pipeline(tmp_path, capfd):
  workdir, out = tmp_path / 'work', tmp_path / 'out'
  tiny = ['--config.model.dim=32', '--config.model.num_heads=2', '--config.model.num_layers=1',
          '--config.train.batch_size=4', '--config.train.num_steps=2', '--config.train.checkpoint_every=2']
  metadata = default_model.build(str(workdir), str(out), num_clips=24, overrides=tiny)
  assert set(metadata['steps']) == {'corpus', 'tokens', 'train'}
  assert metadata['train']['step'] == 2 and np.isfinite(metadata['train']['loss'])
  assert set(metadata['prompt_following']['separation']) == {c.statistic for c in prompt_following.CONTRASTS}
  loaded = pretrained.load(out)
  assert loaded.lm_config.dim == 32 and loaded.decoding == default_model.DECODING
  assert loaded.generate(['solo flute'], duration=0.5).shape == (1, 1, 8000)  # 0.5 s to the sample

  capfd.readouterr()
  again = default_model.build(str(workdir), str(out), num_clips=24, overrides=tiny)  # continues: nothing to redo
  assert capfd.readouterr().out.count('already done') == 3
  assert again['steps'] == metadata['steps']
