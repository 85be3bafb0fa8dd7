"""A trained codec as a folder: `codec.json` (the `CodecConfig`) + `codec.safetensors` (the params).

This is the format of the project's own codecs (`magnet_jax/assets/default/codec/`, the embedded default's, and
the `codec/` folder a training run keeps up to date). Each file is written atomically (`magnet_jax.io.params`), and
loading checks every array's name and shape against the config, so a folder never loads half-updated or mismatched.
"""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.codec.config import CodecConfig
from magnet_jax.codec.model import Params, init
from magnet_jax.io import params as params_io
from magnet_jax.io.errors import CheckpointError

CONFIG_FILE = 'codec.json'
PARAMS_FILE = 'codec.safetensors'
FORMAT = 'magnet-jax-codec'
# The codec trained by the project on its procedural corpus, shipped with the package (configs/codec_default.py).
# It is the codec/ folder of the embedded default pipeline (magnet_jax/assets/default, configs/default_model.py).
EMBEDDED_CODEC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'assets', 'default',
                                  'codec')


def save_codec(folder: str | os.PathLike, config: CodecConfig, params: Params, **metadata) -> None:
  """Writes `config` and `params` into `folder` (created if needed), each file atomically.

  Args:
    folder: destination.
    config: the architecture.
    params: `EncodecModel(config)` params (device or host arrays).
    **metadata: JSON-serialisable facts stored beside the config (training step, validation scores, ...).
  """
  folder = os.fspath(folder)
  params_io.save_params(os.path.join(folder, PARAMS_FILE), params)
  params_io.save_json(os.path.join(folder, CONFIG_FILE),
                      {'format': FORMAT, 'config': dataclasses.asdict(config), 'metadata': metadata})


def _config_from_json(path: str) -> CodecConfig:
  content = params_io.load_json(path)
  if not isinstance(content, dict) or content.get('format') != FORMAT or not isinstance(content.get('config'), dict):
    raise CheckpointError(f'{path}: not a magnet-jax codec config (expected {{"format": "{FORMAT}", "config": ...}})')
  try:
    return CodecConfig(**content['config'])
  except (TypeError, ValueError) as e:
    raise CheckpointError(f'{path}: invalid codec config ({e})') from e


def load_codec(folder: str | os.PathLike) -> tuple[CodecConfig, Params]:
  """Reads a folder written by `save_codec`.

  Args:
    folder: holds codec.json and codec.safetensors (e.g. `EMBEDDED_CODEC_DIR`).

  Returns:
    (config, params) with params as jax arrays, ready for `magnet_jax.codec.encode` / `decode`.

  Raises:
    CheckpointError: the folder or a file is missing or unreadable, or the params do not fit the config.
  """
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise CheckpointError(f'codec folder not found: {folder}')
  config = _config_from_json(os.path.join(folder, CONFIG_FILE))
  path = os.path.join(folder, PARAMS_FILE)
  loaded = params_io.load_params(path)
  params_io.check_shapes(path, loaded, jax.eval_shape(init, jax.random.key(0), config), CONFIG_FILE)
  return config, jax.tree.map(lambda v: jnp.asarray(v, np.float32), loaded)
