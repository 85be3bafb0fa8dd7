"""Reads transformers model folders (config.json + weights) into Flax parameter trees, without torch or transformers.

Weights come from `model.safetensors` (or a sharded `model.safetensors.index.json`) or, failing that, from
`pytorch_model.bin` through the torch-free `magnet_jax.io.torch_pickle` reader.
"""
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy
from flax import traverse_util

from magnet_jax.io.errors import CheckpointError
from magnet_jax.io.torch_pickle import load as load_torch_file

ParamPath = tuple[str, ...]


def check_folder(folder: str | os.PathLike, kind: str = 'text model') -> str:
  """Returns folder as a str, or raises FileNotFoundError ('<kind> folder not found') if it is not a directory."""
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'{kind} folder not found: {folder}')
  return folder


def read_json(folder: str, name: str, required: bool = True) -> dict:
  """Parses `folder/name`; returns {} for an absent optional file."""
  path = os.path.join(folder, name)
  if not os.path.isfile(path):
    if required:
      raise FileNotFoundError(f'{name} not found in {folder}')
    return {}
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
  try:
    return safetensors.numpy.load_file(path)
  except (safetensors.SafetensorError, OSError, ValueError) as e:
    raise CheckpointError(f'{path}: corrupt or truncated safetensors file: {e}') from e


def read_weights(folder: str) -> dict[str, np.ndarray]:
  """Loads every tensor of a transformers folder as numpy arrays keyed by their PyTorch names.

  Raises:
    CheckpointError: no weights file, or a file that is corrupt or truncated.
  """
  single = os.path.join(folder, 'model.safetensors')
  index = os.path.join(folder, 'model.safetensors.index.json')
  torch_file = os.path.join(folder, 'pytorch_model.bin')
  if os.path.isfile(single):
    return _load_safetensors(single)
  if os.path.isfile(index):
    shards = sorted(set(read_json(folder, 'model.safetensors.index.json')['weight_map'].values()))
    state = {}
    for shard in shards:
      state.update(_load_safetensors(os.path.join(folder, shard)))
    return state
  if os.path.isfile(torch_file):
    return dict(load_torch_file(torch_file))
  raise CheckpointError(f'no model.safetensors or pytorch_model.bin in {folder}')


def dense_keys(key: str, *path: str) -> dict[str, ParamPath]:
  """The key map of a torch Linear (or Conv) `key` to the Flax Dense (or Conv) at `path`."""
  return {f'{key}.weight': (*path, 'kernel'), f'{key}.bias': (*path, 'bias')}


def norm_keys(key: str, *path: str) -> dict[str, ParamPath]:
  """The key map of a torch LayerNorm `key` to the Flax LayerNorm at `path`."""
  return {f'{key}.weight': (*path, 'scale'), f'{key}.bias': (*path, 'bias')}


def encoder_layer_keys(prefix: str, layer: str, attention: str, attn_norm: str, ffn_norm: str
                       ) -> dict[str, ParamPath]:
  """The key map of a transformers BERT-style encoder layer `prefix` (BERT, RoBERTa, AST) to the Flax
  `EncoderLayer` `layer`: query/key/value under `prefix.attention`, the output projection, the intermediate and
  output dense layers and two LayerNorms, whose keys differ by model (`attn_norm`, `ffn_norm` under `prefix`)."""
  keys = {}
  for torch_name, name in (('query', 'q'), ('key', 'k'), ('value', 'v')):
    keys.update(dense_keys(f'{prefix}.attention.{attention}.{torch_name}', layer, 'attn', name))
  keys.update(dense_keys(f'{prefix}.attention.output.dense', layer, 'attn', 'o'))
  keys.update(norm_keys(f'{prefix}.{attn_norm}', layer, 'attn_norm'))
  keys.update(dense_keys(f'{prefix}.intermediate.dense', layer, 'ffn', 'wi'))
  keys.update(dense_keys(f'{prefix}.output.dense', layer, 'ffn', 'wo'))
  keys.update(norm_keys(f'{prefix}.{ffn_norm}', layer, 'ffn_norm'))
  return keys


def convert(state: Mapping[str, np.ndarray], key_map: Mapping[str, ParamPath], expected: Mapping,
            ignore: Callable[[str], bool]) -> dict:
  """Builds a Flax params tree from a PyTorch state dict.

  PyTorch Linear weights [out, in] become Dense kernels [in, out] (every target named `kernel`); all else is
  copied as float32.

  Args:
    state: PyTorch name -> array.
    key_map: PyTorch name -> path in the Flax params tree; every entry must be present in state.
    expected: the params tree the module expects (arrays or `jax.ShapeDtypeStruct`s), for shape checks.
    ignore: True for state keys that are not part of the model (decoder, pooler, buffers).

  Returns:
    The nested params dict.

  Raises:
    CheckpointError: naming the first unknown, missing or wrongly shaped key.
  """
  unknown = [k for k in state if k not in key_map and not ignore(k)]
  if unknown:
    raise CheckpointError(f'unexpected checkpoint key {unknown[0]!r} ({len(unknown)} unknown keys)')
  missing = [k for k in key_map if k not in state]
  if missing:
    raise CheckpointError(f'checkpoint key {missing[0]!r} is missing ({len(missing)} missing keys)')
  shapes = {path: tuple(leaf.shape) for path, leaf in traverse_util.flatten_dict(expected).items()}
  flat = {}
  for key, path in key_map.items():
    value = np.asarray(state[key], np.float32)
    if path[-1] == 'kernel':
      value = value.T
    if value.shape != shapes[path]:
      raise CheckpointError(f'checkpoint key {key!r} has shape {value.shape}, expected {shapes[path]}')
    flat[path] = value
  return traverse_util.unflatten_dict(flat)


def load_encoder(folder: str | os.PathLike, config_from_dict: Callable[[dict], Any],
                 module: Callable[[Any], nn.Module], key_map: Callable[[Any], Mapping[str, ParamPath]],
                 ignore: Callable[[str], bool],
                 prepare: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] = lambda state: state):
  """(config, Flax params) of a transformers text-encoder folder: its config.json through `config_from_dict`, its
  weights through `prepare` (key renames) and `key_map(config)`, checked against `module(config)`'s parameter
  shapes (input ids [B, S], mask [B, S]).

  Raises:
    FileNotFoundError: the folder or its config.json does not exist.
    CheckpointError: weights missing, truncated, or with unknown / missing / misshapen encoder keys.
  """
  folder = check_folder(folder)
  config = config_from_dict(read_json(folder, 'config.json'))
  state = prepare(read_weights(folder))
  ids = jnp.zeros((1, 1), jnp.int32)
  expected = jax.eval_shape(module(config).init, jax.random.key(0), ids, ids > 0)['params']
  return config, convert(state, key_map(config), expected, ignore=ignore)
