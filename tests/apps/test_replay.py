"""A sidecar holds everything to regenerate its file: `--replay` gives the same samples, LoRA adapters included."""
import hashlib
import json
import os

import jax
import numpy as np
import pytest

from magnet_jax.audio import files as audio_io
from magnet_jax.generation import lora, pretrained
from magnet_jax.generation.prompts import Prompt
from magnet_jax.generation.sample_files import SampleOptions, replay, sample
from magnet_jax.training.lora import init_adapters


@pytest.fixture(scope='module')
def adapter(tiny_pipeline_folder, tmp_path_factory):
  """A LoRA adapter file of random a and b (an untrained one, b = 0, would change nothing)."""
  pipeline = pretrained.load(tiny_pipeline_folder)
  config = lora.LoraConfig(rank=2, alpha=2.0, dropout=0.0)
  adapters = init_adapters(pipeline.lm_params, config, jax.random.key(0))
  leaves, tree = jax.tree.flatten(adapters)
  noise = [0.2 * jax.random.normal(jax.random.key(i), leaf.shape) for i, leaf in enumerate(leaves)]
  path = str(tmp_path_factory.mktemp('lora') / 'lora.safetensors')
  lora.save_adapter(path, jax.tree.unflatten(tree, noise), config,
                    {k: getattr(pipeline.lm_config, k) for k in lora.ARCHITECTURE})
  return path


@pytest.fixture(scope='module')
def written(tiny_pipeline_folder, adapter, tmp_path_factory):
  """A batch of two files with a LoRA adapter, a preset and an override, and the log of the run."""
  lines = []
  options = SampleOptions(prompts=(Prompt('calm piano'), Prompt('fast drums', seed=7)), checkpoint=str(
      tiny_pipeline_folder), out=str(tmp_path_factory.mktemp('out')), preset='fast', sampling={'temp': 2.5},
      lora=(f'{adapter}:0.5',), duration=0.6)
  return sample(options, log=lines.append), lines


def test_the_sidecar_and_the_log_name_the_adapter_and_its_scale(written, adapter):
  outputs, lines = written
  assert any(f'LoRA {adapter} (scale 0.5)' in line for line in lines)
  record = json.load(open(os.path.splitext(outputs[1]['path'])[0] + '.json'))
  assert record['lora'] == [{'file': adapter, 'scale': 0.5, 'sha256': hashlib.sha256(open(adapter, 'rb').read())
                             .hexdigest()}]
  assert record['decoding']['temp'] == 2.5 and record['decoding']['decoding_steps'] == [4, 2, 2, 2]
  assert [entry['seed'] for entry in record['batch']] == [0, 7] and record['batch_index'] == 1


def test_replay_equals_the_original_sample_for_sample(written):
  original = written[0][1]['path']
  replayed = replay(os.path.splitext(original)[0] + '.json', log=print)
  assert replayed['identical'] is True and replayed['path'] != original
  np.testing.assert_array_equal(audio_io.read(replayed['path'])[0], audio_io.read(original)[0])


def test_replay_refuses_a_changed_adapter_before_loading(written, tmp_path):
  record = json.load(open(os.path.splitext(written[0][0]['path'])[0] + '.json'))
  record['lora'][0]['sha256'] = '0' * 64
  sidecar = tmp_path / 'changed.json'
  sidecar.write_text(json.dumps(record))
  with pytest.raises(ValueError, match='changed since the file was generated'):
    replay(str(sidecar))


def test_replay_of_an_old_sidecar_says_what_it_lacks(tmp_path):
  sidecar = tmp_path / 'old.json'
  sidecar.write_text(json.dumps({'prompt': 'piano', 'seed': 0}))
  with pytest.raises(ValueError, match="lacks \\['batch'"):
    replay(str(sidecar))
