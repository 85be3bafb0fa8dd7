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
from safetensors.numpy import load_file, save_file

from magnet_jax.convert.torch_pickle import CheckpointError
from magnet_jax.files import atomic_write

_SEP = '/'


def flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, np.ndarray]:
  """{'a': {'b': x}} -> {'a/b': x} (numpy)."""
  flat = {}
  for key, value in tree.items():
    name = f'{prefix}{key}'
    if isinstance(value, Mapping):
      flat.update(flatten(value, name + _SEP))
    else:
      flat[name] = np.asarray(jax.device_get(value))
  return flat


def unflatten(flat: Mapping[str, np.ndarray]) -> dict:
  tree: dict = {}
  for name, value in flat.items():
    *parents, leaf = name.split(_SEP)
    node = tree
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


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


def save_json(path: str | os.PathLike, value: Any) -> None:
  text = json.dumps(value, indent=2, sort_keys=True)
  def write(tmp):
    with open(tmp, 'w') as f:
      f.write(text + '\n')
  atomic_write(os.fspath(path), write)


def load_json(path: str | os.PathLike) -> Any:
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise CheckpointError(f'config file not found: {path}')
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise CheckpointError(f'{path}: not valid JSON ({e})') from e
