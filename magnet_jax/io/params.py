"""Inference weights as files: a parameter tree <-> one safetensors file, with a JSON config beside it.

Used for converted checkpoints (load once without torch or pickle) and the project's own shipped models. Writes
are atomic (`files.atomic_write`).
"""
import json
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from flax import traverse_util
from safetensors.numpy import load_file, save_file

from magnet_jax.io.errors import CheckpointError
from magnet_jax.io.files import atomic_write

_SEP = '/'


def flatten(tree: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """{'a': {'b': x}} -> {'a/b': x} as numpy arrays on the host."""
  return {k: np.asarray(jax.device_get(v)) for k, v in traverse_util.flatten_dict(tree, sep=_SEP).items()}


def unflatten(flat: Mapping[str, np.ndarray]) -> dict:
  """{'a/b': x} -> {'a': {'b': x}}."""
  return traverse_util.unflatten_dict(dict(flat), sep=_SEP)


def save_params(path: str | os.PathLike, params: Mapping[str, Any]) -> None:
  """Writes a parameter tree as safetensors (atomically)."""
  flat = flatten(params)
  atomic_write(os.fspath(path), lambda tmp: save_file(flat, tmp))


def load_params(path: str | os.PathLike) -> dict:
  """Reads a safetensors file written by `save_params` back into a nested dict of numpy arrays."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise CheckpointError(f'weights file not found: {path}')
  try:
    return unflatten(load_file(path))
  except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
    raise CheckpointError(f'{path}: unreadable safetensors file ({e})') from e


def check_shapes(path: str, params: Mapping, expected: Mapping, config_file: str) -> None:
  """Raises CheckpointError naming the first parameter of `params` whose name or shape differs from `expected`
  (nested dicts of arrays / `jax.eval_shape` results), i.e. weights that do not fit the config beside them."""
  loaded = traverse_util.flatten_dict(dict(params), sep='/')
  wanted = traverse_util.flatten_dict(dict(expected), sep='/')
  if loaded.keys() != wanted.keys():
    missing, extra = sorted(wanted.keys() - loaded.keys()), sorted(loaded.keys() - wanted.keys())
    raise CheckpointError(f'{path}: parameters do not match {config_file} (missing {missing[:3]}, unexpected '
                          f'{extra[:3]})')
  for name, value in loaded.items():
    if tuple(value.shape) != tuple(wanted[name].shape):
      raise CheckpointError(f'{path}: {name} has shape {tuple(value.shape)}, {config_file} needs '
                            f'{tuple(wanted[name].shape)}')


def save_json(path: str | os.PathLike, value: Any) -> None:
  """Writes `value` as indented JSON, atomically."""
  atomic_write(os.fspath(path), lambda tmp: dump_json(tmp, value))


def dump_json(path: str | os.PathLike, value: Any) -> None:
  """Writes `value` as indented JSON (sorted keys) to `path` as it is (see `save_json` for the atomic write)."""
  text = json.dumps(value, indent=2, sort_keys=True)
  with open(path, 'w') as f:
    f.write(text + '\n')


def load_json(path: str | os.PathLike) -> Any:
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise CheckpointError(f'config file not found: {path}')
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise CheckpointError(f'{path}: not valid JSON ({e})') from e
