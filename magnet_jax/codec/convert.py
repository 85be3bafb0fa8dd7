"""EnCodec checkpoints (transformers folders, audiocraft `compression_state_dict.bin`) to magnet-jax params.

No torch at runtime: safetensors are read with `safetensors.numpy`, `.bin` files with the restricted unpickler
of `magnet_jax.io.torch_pickle`. Every problem raises `CheckpointError` naming the file and the key.

Parameter names come from `EncodecModel` (see `magnet_jax.codec.seanet`): `{encoder,decoder}/{kind}_{i}/...`
where i is the module's position in audiocraft's `encoder.model` / transformers' `encoder.layers`.
"""
import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import safetensors
import safetensors.numpy
import yaml
from flax import traverse_util

from magnet_jax.codec.config import CodecConfig
from magnet_jax.codec.model import Params, init
from magnet_jax.io import torch_pickle
from magnet_jax.io.errors import CheckpointError
from magnet_jax.io.folders import find_model_folder

StateDict = Mapping[str, np.ndarray]


class Layout(NamedTuple):
  """Where a checkpoint dialect keeps each module."""
  sequential: str  # `{encoder,decoder}.{sequential}.{i}`: the i-th layer
  conv: str  # a convolution's torch module inside its layer
  convtr: str  # a transposed convolution's torch module inside its layer
  codebook: str  # the k-th codebook module, with `{k}`


TRANSFORMERS = Layout(sequential='layers', conv='conv', convtr='conv', codebook='quantizer.layers.{k}.codebook')
AUDIOCRAFT = Layout(sequential='model', conv='conv.conv', convtr='convtr.convtr',
                    codebook='quantizer.vq.layers.{k}._codebook')
# Codebook statistics used only by training (EMA updates, k-means initialisation).
_TRAINING_BUFFERS = ('cluster_size', 'embed_avg', 'inited')


class _Reader:
  """Takes arrays out of a state dict by key, remembering which keys were used."""

  def __init__(self, state_dict: StateDict, source: str):
    self.state_dict, self.source, self.used, self.last = state_dict, source, set(), None

  def has(self, key: str) -> bool:
    return key in self.state_dict

  def take(self, key: str) -> np.ndarray:
    if key not in self.state_dict:
      raise CheckpointError(f'{self.source}: missing key {key}')
    self.used.add(key)
    self.last = key
    return np.asarray(self.state_dict[key], np.float32)

  def weight(self, prefix: str) -> np.ndarray:
    """A convolution weight with weight norm (either torch spelling) folded in: w = g * v / ||v||."""
    for g_key, v_key in ((f'{prefix}.weight_g', f'{prefix}.weight_v'),
                         (f'{prefix}.parametrizations.weight.original0',
                          f'{prefix}.parametrizations.weight.original1')):
      if self.has(g_key):
        g, v = self.take(g_key), self.take(v_key)
        norm = np.sqrt(np.sum(v.astype(np.float64)**2, axis=tuple(range(1, v.ndim)), keepdims=True))
        return (g * v / norm).astype(np.float32)
    return self.take(f'{prefix}.weight')

  def check_all_used(self):
    unused = sorted(k for k in self.state_dict
                    if k not in self.used and not (k.startswith('quantizer.') and k.endswith(_TRAINING_BUFFERS)))
    if unused:
      raise CheckpointError(f'{self.source}: {len(unused)} unexpected keys for this config, e.g. {unused[:3]}')


def _convert_leaf(reader: _Reader, layout: Layout, path: tuple[str, ...]) -> np.ndarray:
  """Reads the checkpoint array(s) for one parameter path of `EncodecModel`."""
  network, layer, *inner, leaf = path
  kind, index = layer.rsplit('_', 1)
  prefix = f'{network}.{layout.sequential}.{index}'
  if kind == 'lstm':
    torch_name, layer_index = leaf.rsplit('_', 1)
    if torch_name == 'bias':
      return reader.take(f'{prefix}.lstm.bias_ih_{layer_index}') + reader.take(f'{prefix}.lstm.bias_hh_{layer_index}')
    return reader.take(f'{prefix}.lstm.{"weight_ih" if torch_name == "w_ih" else "weight_hh"}_{layer_index}').T
  if kind == 'resblock':  # inner is ('block_1',), ('block_3',) or ('shortcut',)
    prefix += '.' + inner[0].replace('_', '.')
  prefix += '.' + (layout.convtr if kind == 'convtr' else layout.conv)
  if leaf == 'bias':
    return reader.take(f'{prefix}.bias')
  weight = reader.weight(prefix)  # conv [out, in, K]; transposed conv [in, out, K]
  return weight.transpose(2, 0, 1) if kind == 'convtr' else weight.transpose(2, 1, 0)


def _codebooks(reader: _Reader, layout: Layout, n_q: int) -> np.ndarray:
  books = []
  for k in range(n_q):
    prefix = layout.codebook.format(k=k)
    if reader.has(f'{prefix}.inited') and not reader.state_dict[f'{prefix}.inited'].all():
      raise CheckpointError(f'{reader.source}: {prefix}.inited is false: codebook never initialised (k-means)')
    books.append(reader.take(f'{prefix}.embed'))
  return np.stack(books)


def convert_state_dict(state_dict: StateDict, config: CodecConfig, layout: Layout, source: str) -> Params:
  """Maps a PyTorch EnCodec state dict onto the parameter tree of `EncodecModel(config)`.

  Args:
    state_dict: torch key -> array.
    config: the architecture the state dict must match exactly (no missing, unexpected or misshapen keys).
    layout: `TRANSFORMERS` or `AUDIOCRAFT` key naming.
    source: the file, for error messages.

  Returns:
    The params tree as float32 numpy arrays on the host (`jax.device_put` them once before repeated calls).
  """
  if not isinstance(state_dict, Mapping):
    raise CheckpointError(f'{source}: expected a state dict, got {type(state_dict).__name__}')
  reader = _Reader(state_dict, source)
  expected = traverse_util.flatten_dict(jax.eval_shape(functools.partial(init, config=config), jax.random.key(0)))
  params = {}
  for path, target in expected.items():
    try:
      if path == ('quantizer', 'codebooks'):
        value = _codebooks(reader, layout, config.n_q)
      else:
        value = _convert_leaf(reader, layout, path)
    except CheckpointError:
      raise
    except ValueError as e:  # arrays that cannot be combined (g and v, stacked codebooks, LSTM biases)
      raise CheckpointError(f'{source}: {reader.last}: shapes do not fit {"/".join(path)}: {e}') from e
    if value.shape != target.shape:
      raise CheckpointError(f'{source}: {reader.last}: shape {value.shape} (as {"/".join(path)}) does not match '
                            f'the config, which expects {target.shape}')
    params[path] = value
  reader.check_all_used()
  return traverse_util.unflatten_dict(params)


def _config(source: str, **fields) -> CodecConfig:
  try:
    return CodecConfig(**fields)
  except (TypeError, ValueError) as e:
    raise CheckpointError(f'{source}: unsupported codec config: {e}') from e


# ---------------------------------------------------------------------------------------------------- transformers


def config_from_transformers(hf: Mapping[str, Any], source: str = 'config.json') -> CodecConfig:
  """CodecConfig from a transformers EncodecConfig dict (config.json)."""
  def get(key):
    if key not in hf:
      raise CheckpointError(f'{source}: missing key {key}')
    return hf[key]

  if get('norm_type') != 'weight_norm':
    raise CheckpointError(f'{source}: norm_type {hf["norm_type"]!r} is not supported (only weight_norm)')
  if hf.get('normalize') or hf.get('chunk_length_s'):
    raise CheckpointError(f'{source}: normalize / chunk_length_s (48 kHz-style chunked codec) is not supported')
  if hf.get('codebook_dim') not in (None, get('hidden_size')):
    raise CheckpointError(f'{source}: codebook_dim {hf["codebook_dim"]} != hidden_size {hf["hidden_size"]}')
  ratios = get('upsampling_ratios')
  frame_rate = -(-get('sampling_rate') // int(np.prod(ratios)))  # EncodecConfig.num_quantizers arithmetic
  n_q = int(1000 * get('target_bandwidths')[-1] // (frame_rate * int(np.ceil(np.log2(get('codebook_size'))))))
  return _config(
      source, sample_rate=get('sampling_rate'), channels=get('audio_channels'), ratios=ratios,
      n_filters=get('num_filters'), n_residual_layers=get('num_residual_layers'), dimension=get('hidden_size'),
      n_q=n_q, bins=get('codebook_size'), lstm=get('num_lstm_layers'), kernel_size=get('kernel_size'),
      last_kernel_size=get('last_kernel_size'), residual_kernel_size=get('residual_kernel_size'),
      dilation_base=get('dilation_growth_rate'), compress=get('compress'),
      true_skip=not get('use_conv_shortcut'), pad_mode=get('pad_mode'), causal=get('use_causal_conv'),
      trim_right_ratio=get('trim_right_ratio'))


def _load_weights(folder: str) -> tuple[StateDict, str]:
  path = os.path.join(folder, 'model.safetensors')
  if os.path.isfile(path):
    try:
      return safetensors.numpy.load_file(path), path
    except (safetensors.SafetensorError, OSError, ValueError) as e:
      raise CheckpointError(f'{path}: unreadable safetensors file (truncated?): {e}') from e
  path = os.path.join(folder, 'pytorch_model.bin')
  if os.path.isfile(path):
    return torch_pickle.load(path), path
  raise CheckpointError(f'{folder}: no model.safetensors or pytorch_model.bin')


def load_transformers(folder: str | os.PathLike) -> tuple[CodecConfig, Params]:
  """Loads a transformers `EncodecModel` folder (config.json + model.safetensors or pytorch_model.bin).

  Args:
    folder: e.g. a local copy of facebook/encodec_32khz.

  Returns:
    (config, params); codes from `encode` match `EncodecModel.encode(x, bandwidth=max(target_bandwidths))`.
  """
  folder = os.fspath(folder)
  config_path = os.path.join(folder, 'config.json')
  if not os.path.isfile(config_path):
    raise CheckpointError(f'{config_path}: not found (expected a transformers EncodecModel folder)')
  try:
    with open(config_path) as f:
      config = config_from_transformers(json.load(f), config_path)
  except json.JSONDecodeError as e:
    raise CheckpointError(f'{config_path}: invalid JSON: {e}') from e
  state_dict, source = _load_weights(folder)
  return config, convert_state_dict(state_dict, config, TRANSFORMERS, source)


# ------------------------------------------------------------------------------------------------------ audiocraft

_REFERENCE = re.compile(r'^\$\{([\w.]+)\}$')


class _XpConfig:
  """Reads dotted keys of audiocraft's `xp.cfg` (OmegaConf YAML, possibly with `${a.b}` references)."""

  def __init__(self, text: str, source: str):
    self.source = source
    try:
      self.root = yaml.safe_load(text)
    except yaml.YAMLError as e:
      raise CheckpointError(f'{source}: xp.cfg is not valid YAML: {e}') from e
    if not isinstance(self.root, dict):
      raise CheckpointError(f'{source}: xp.cfg is not a YAML mapping')

  def resolve(self, value: Any) -> Any:
    """Follows `${a.b}` references (the interpolation `OmegaConf.to_yaml` leaves in place)."""
    while isinstance(value, str) and (match := _REFERENCE.match(value)):
      value = self.get(match.group(1))
    return value

  def get(self, dotted: str) -> Any:
    node = self.root
    for part in dotted.split('.'):
      if not isinstance(node, dict) or part not in node:
        raise CheckpointError(f'{self.source}: xp.cfg has no key {dotted}')
      node = node[part]
    return self.resolve(node)

  def seanet(self, key: str) -> Any:
    """seanet.{key}, which must agree between the encoder and decoder overrides."""
    values = []
    for side in ('encoder', 'decoder'):
      override = self.get(f'seanet.{side}') or {}
      values.append(self.resolve(override[key]) if key in override else self.get(f'seanet.{key}'))
    if values[0] != values[1]:
      raise CheckpointError(f'{self.source}: xp.cfg seanet.{key} differs between encoder and decoder: {values}')
    return values[0]


def config_from_audiocraft(xp_cfg: str, source: str = 'xp.cfg') -> CodecConfig:
  """CodecConfig from the YAML `xp.cfg` string of an audiocraft EnCodec checkpoint."""
  cfg = _XpConfig(xp_cfg, source)
  expect = {'compression_model': 'encodec', 'encodec.autoencoder': 'seanet', 'encodec.quantizer': 'rvq',
            'encodec.renormalize': False, 'seanet.activation': 'ELU', 'seanet.decoder.final_activation': None}
  for key, value in expect.items():
    if (found := cfg.get(key)) != value:
      raise CheckpointError(f'{source}: xp.cfg {key} is {found!r}; only {value!r} is supported')
  if cfg.seanet('norm') not in ('weight_norm', 'none'):
    raise CheckpointError(f'{source}: xp.cfg seanet.norm {cfg.seanet("norm")!r} is not supported')
  seanet_keys = ('channels', 'ratios', 'n_filters', 'n_residual_layers', 'dimension', 'lstm', 'kernel_size',
                 'last_kernel_size', 'residual_kernel_size', 'dilation_base', 'compress', 'true_skip', 'pad_mode',
                 'causal')
  return _config(
      source, sample_rate=cfg.get('encodec.sample_rate'), n_q=cfg.get('rvq.n_q'), bins=cfg.get('rvq.bins'),
      trim_right_ratio=cfg.get('seanet.decoder.trim_right_ratio'),
      elu_alpha=(cfg.seanet('activation_params') or {}).get('alpha', 1.0),
      **{key: cfg.seanet(key) for key in seanet_keys})


def load_audiocraft(path: str | os.PathLike, pretrained_dir: str | os.PathLike | None = None,
                    search: Sequence[str | os.PathLike] = ()) -> tuple[CodecConfig, Params]:
  """Loads audiocraft's `compression_state_dict.bin`.

  Args:
    path: the file, either `{'best_state': state_dict, 'xp.cfg': yaml}` (an audiocraft EncodecModel) or the
      pointer `{'pretrained': 'facebook/encodec_32khz'}` to a transformers model.
    pretrained_dir: local transformers folder of the model a pointer names (nothing is downloaded).
    search: folders in which to look for that model's folder (`<dir>/<name>`) when pretrained_dir is None.

  Returns:
    (config, params).
  """
  path = os.fspath(path)
  pkg = torch_pickle.load(path)
  if not isinstance(pkg, dict):
    raise CheckpointError(f'{path}: expected a dict, got {type(pkg).__name__}')
  if 'pretrained' in pkg:
    if pretrained_dir is None:
      pretrained_dir = find_model_folder(str(pkg['pretrained']), search)
    if pretrained_dir is None:
      raise CheckpointError(f'{path} points to the pretrained codec {pkg["pretrained"]!r}: pass its local '
                            'transformers folder as pretrained_dir')
    return load_transformers(pretrained_dir)
  for key in ('best_state', 'xp.cfg'):
    if key not in pkg:
      raise CheckpointError(f'{path}: missing key {key!r} (neither a full nor a pointer compression checkpoint)')
  config = config_from_audiocraft(pkg['xp.cfg'], path)
  return config, convert_state_dict(pkg['best_state'], config, AUDIOCRAFT, path)
