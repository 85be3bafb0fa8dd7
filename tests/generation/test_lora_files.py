"""LoRA adapter files and `merge_lora` under bad input (issue 26): crafted headers and tensors are one
CheckpointError naming the file, non-finite weights, alpha or scale are refused, and the merged folder is written
through a temporary folder, never over an existing one without --overwrite, never over its own base, and loads
when the source names its text encoder by a relative folder."""
import dataclasses
import json
import os
import shutil

import jax
import numpy as np
import pytest
from flax import traverse_util
from safetensors.numpy import save_file

from magnet_jax.generation import lora, pretrained
from magnet_jax.io.errors import CheckpointError
from magnet_jax.text.encoder import minilm_folder
from magnet_jax.training.lora import init_adapters
from tests.helpers import run_module


@pytest.fixture(scope='module')
def base(tiny_pipeline_folder):
  return pretrained.load(tiny_pipeline_folder, dtype='float32')


@pytest.fixture(scope='module')
def adapter(base, tmp_path_factory):
  """A rank-2 adapter of the tiny pipeline's self-attention, with non-zero b (so merging changes the weights)."""
  config = lora.LoraConfig(rank=2, alpha=4.0, targets=('self_attn',))
  adapters = init_adapters(base.lm_params, config, jax.random.key(0))
  flat = {k: np.asarray(v) + (0.01 if k.endswith('/b') else 0) for k, v in
          traverse_util.flatten_dict(jax.device_get(adapters), sep='/').items()}
  path = tmp_path_factory.mktemp('adapter') / 'lora.safetensors'
  lora.save_adapter(path, traverse_util.unflatten_dict(flat, sep='/'), config, dataclasses.asdict(base.lm_config))
  return path


def _crafted(adapter, tmp_path, header=None, tensors=None, raw_metadata=None) -> str:
  """A copy of `adapter` with another header (a dict, or raw metadata text) and/or tensors."""
  loaded, original = lora.load_adapter(adapter)
  flat = traverse_util.flatten_dict(loaded, sep='/')
  path = str(tmp_path / 'crafted.safetensors')
  metadata = raw_metadata if raw_metadata is not None else json.dumps({**original, **(header or {})})
  save_file(tensors if tensors is not None else flat, path, metadata={lora.METADATA_KEY: metadata})
  return path


def test_crafted_adapter_files_are_one_line_naming_the_file(adapter, tmp_path):
  flat = traverse_util.flatten_dict(lora.load_adapter(adapter)[0], sep='/')
  first = sorted(flat)[0]
  cases = [({'raw_metadata': '[]'}, 'must be a JSON object'),
           ({'raw_metadata': 'not json {'}, 'is not JSON'),
           ({'header': {'rank': 0}}, 'rank must be an integer >= 1, got 0'),
           ({'header': {'model': 'tiny'}}, 'model must be an object of'),
           ({'header': {'alpha': float('inf')}}, 'alpha must be a finite number, got inf'),
           ({'tensors': {**flat, first: np.array(1.0, np.float32)}}, 'not rank-2 factors'),
           ({'tensors': {**flat, first: np.full_like(flat[first], np.nan)}}, 'holds NaN or inf')]
  for kwargs, message in cases:
    with pytest.raises(CheckpointError) as error:
      lora.load_adapter(_crafted(adapter, tmp_path, **kwargs))
    assert message in str(error.value) and 'crafted.safetensors' in str(error.value), (message, str(error.value))
    assert '\n' not in str(error.value)


def test_non_finite_scales_are_refused(adapter, base):
  with pytest.raises(ValueError, match='scale 1e999 is not a finite number'):
    lora.parse_spec(f'{adapter}:1e999')
  with pytest.raises(ValueError, match='makes .* non-finite'):
    lora.apply_adapters(base.lm_params, base.lm_config, [(str(adapter), 1e300)])


def test_merge_refuses_existing_folders_and_writes_whole(tiny_pipeline_folder, adapter, tmp_path):
  with pytest.raises(ValueError, match='is the base folder'):
    pretrained.merge_adapters(tiny_pipeline_folder, [str(adapter)], tiny_pipeline_folder, overwrite=True)
  out = tmp_path / 'merged'
  out.mkdir()
  (out / 'keep.txt').write_text('mine')
  with pytest.raises(FileExistsError, match='pass --overwrite'):
    pretrained.merge_adapters(tiny_pipeline_folder, [str(adapter)], out)
  assert os.listdir(out) == ['keep.txt']
  pretrained.merge_adapters(tiny_pipeline_folder, [str(adapter)], out, overwrite=True)
  assert sorted(os.listdir(out)) == ['codec', 'lm.safetensors', 'pipeline.json']
  assert os.listdir(tmp_path) == ['merged']  # no temporary or old folder left
  pretrained.load(out)


def test_a_relative_text_encoder_folder_still_loads_after_merging(tiny_pipeline_folder, adapter, tmp_path):
  source = tmp_path / 'source'
  shutil.copytree(tiny_pipeline_folder, source)
  shutil.copytree(minilm_folder(), source / 'text')
  spec = json.loads((source / 'pipeline.json').read_text())
  (source / 'pipeline.json').write_text(json.dumps({**spec, 'text_encoder': 'bert:text'}))
  pretrained.merge_adapters(source, [str(adapter)], tmp_path / 'merged')
  merged = json.loads((tmp_path / 'merged' / 'pipeline.json').read_text())
  assert merged['text_encoder'] == f'bert:{source / "text"}'
  pretrained.load(tmp_path / 'merged')


def test_merge_lora_command_ends_with_what_it_did_and_the_next_command(tiny_pipeline_folder, adapter, base,
                                                                       tmp_path):
  out = tmp_path / 'merged'
  code, stdout, stderr = run_module('magnet_jax.apps.merge_lora', '--checkpoint', str(tiny_pipeline_folder),
                                    '--lora', f'{adapter}:0.5', '--out', str(out))
  assert code == 0, stderr
  merged = pretrained.load(out, dtype='float32')
  flat = lambda params: traverse_util.flatten_dict(jax.device_get(params), sep='/')
  changed = [k for k, v in flat(merged.lm_params).items() if not np.array_equal(v, flat(base.lm_params)[k])]
  assert changed and stdout.strip().splitlines()[-1] == (
      f'merged 1 adapter(s) {adapter} (scale 0.5) into {len(changed)} kernel(s) of {tiny_pipeline_folder}: wrote '
      f'{out}; sample it with: magnet-jax --checkpoint {out} --prompt "..."')
