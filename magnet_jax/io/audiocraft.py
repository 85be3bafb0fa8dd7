"""audiocraft LM checkpoints (MAGNeT's `state_dict.bin`, MusicGen's LM) -> MagnetConfig + Flax params.

MusicGen (`lm_model: transformer_lm`, delay pattern) loads as a causal config: the rescorer (`rescoring.py`).

A released `state_dict.bin` is `torch.save({'best_state': lm_state_dict, 'xp.cfg': yaml_text, 'version': ...})`.
It is read without torch (`torch_pickle`). Key layout (audiocraft names -> ours):

  emb.{k}.weight [V+1, D]                                   -> embedder.emb [K, V+1, D]
  condition_provider.conditioners.<name>.output_proj.{weight [D, Dt], bias}  -> cond_proj.{kernel [Dt, D], bias}
  transformer.layers.{i}.{self_attn,cross_attention}.in_proj_weight [3D, D]  -> query/key/value [D, N, H]
  transformer.layers.{i}.{self_attn,cross_attention}.out_proj.weight [D, D]  -> out [N, H, D]
  transformer.layers.{i}.linear1.weight [F, D] / linear2.weight [D, F]       -> mlp.wi [D, F] / mlp.wo [F, D]
  transformer.layers.{i}.{norm1,norm_cross,norm2}.{weight,bias}              -> {scale, bias}
  out_norm.{weight,bias}; linears.{k}.weight [V, D]                          -> out_norm; heads.kernel [K, D, V]
"""
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import yaml

from magnet_jax.io.errors import CheckpointError
from magnet_jax.io.torch_pickle import load
from magnet_jax.models.config import MagnetConfig

_COND = re.compile(r'^condition_provider\.conditioners\.([^.]+)\.output_proj\.(weight|bias)$')
_NORMS = {'norm1': 'norm1', 'norm_cross': 'norm_cross', 'norm2': 'norm2'}


def _numpy(value: Any) -> np.ndarray:
  """A numpy float32/int array from a numpy array or a torch tensor (no torch import needed)."""
  if hasattr(value, 'detach'):  # torch.Tensor: go through float32 so bfloat16/float16 convert too
    value = value.detach().cpu().float().numpy()
  return np.asarray(value, dtype=np.float32)


def _layer_params(sd: Mapping[str, np.ndarray], prefix: str, cfg: MagnetConfig) -> dict:
  """One transformer layer's params from keys under `prefix` (e.g. 'transformer.layers.3.')."""
  d, n, h = cfg.dim, cfg.num_heads, cfg.head_dim

  def attention(name: str) -> dict:
    w = sd[f'{prefix}{name}.in_proj_weight']
    q, k, v = (w[i * d:(i + 1) * d].T.reshape(d, n, h) for i in range(3))
    out = sd[f'{prefix}{name}.out_proj.weight'].T.reshape(n, h, d)
    return {'query': q, 'key': k, 'value': v, 'out': out}

  layer = {name: {'scale': sd[f'{prefix}{name}.weight'], 'bias': sd[f'{prefix}{name}.bias']} for name in _NORMS}
  layer['self_attn'] = attention('self_attn')
  layer['cross_attention'] = attention('cross_attention')
  layer['mlp'] = {'wi': sd[f'{prefix}linear1.weight'].T, 'wo': sd[f'{prefix}linear2.weight'].T}
  return layer


def _expected_shapes(cfg: MagnetConfig, cond_name: str) -> dict[str, tuple[int, ...]]:
  d, f = cfg.dim, cfg.mlp_dim
  shapes = {f'emb.{k}.weight': (cfg.card + 1, d) for k in range(cfg.n_q)}
  shapes.update({f'linears.{k}.weight': (cfg.card, d) for k in range(cfg.n_q)})
  shapes[f'condition_provider.conditioners.{cond_name}.output_proj.weight'] = (d, cfg.text_dim)
  shapes[f'condition_provider.conditioners.{cond_name}.output_proj.bias'] = (d,)
  shapes.update({'out_norm.weight': (d,), 'out_norm.bias': (d,)})
  for i in range(cfg.num_layers):
    p = f'transformer.layers.{i}.'
    for attn in ('self_attn', 'cross_attention'):
      shapes[f'{p}{attn}.in_proj_weight'] = (3 * d, d)
      shapes[f'{p}{attn}.out_proj.weight'] = (d, d)
    shapes.update({f'{p}linear1.weight': (f, d), f'{p}linear2.weight': (d, f)})
    for norm in _NORMS:
      shapes.update({f'{p}{norm}.weight': (d,), f'{p}{norm}.bias': (d,)})
  return shapes


def _condition_name(keys) -> str:
  names = sorted({m.group(1) for m in map(_COND.match, keys) if m})
  if len(names) != 1:
    raise CheckpointError(f'expected exactly one text conditioner output_proj in the LM state dict, found {names}')
  return names[0]


def _check_keys(sd: Mapping[str, np.ndarray], cfg: MagnetConfig, cond_name: str) -> None:
  """One clear error for the first problem: codebook count, missing/unknown key, shape (card, dim...)."""
  levels = sorted({int(m.group(1)) for m in map(re.compile(r'^emb\.(\d+)\.weight$').match, sd) if m})
  if len(levels) != cfg.n_q:
    raise CheckpointError(f'checkpoint has {len(levels)} codebook embeddings (emb.*) but the config has '
                          f'n_q={cfg.n_q}')
  card = sd['emb.0.weight'].shape[0] - 1
  if card != cfg.card:
    raise CheckpointError(f'checkpoint codebook size (card) is {card} (emb.0.weight has {card + 1} rows) but the '
                          f'config has card={cfg.card}')
  expected = _expected_shapes(cfg, cond_name)
  missing = sorted(set(expected) - set(sd))
  if missing:
    raise CheckpointError(f'LM state dict is missing key {missing[0]!r} ({len(missing)} missing in all)')
  unknown = sorted(set(sd) - set(expected))
  if unknown:
    raise CheckpointError(f'LM state dict has unknown key {unknown[0]!r} ({len(unknown)} unknown in all)')
  for key, shape in expected.items():
    if tuple(sd[key].shape) != shape:
      raise CheckpointError(f'{key}: shape {tuple(sd[key].shape)} does not match the config {shape}')


def params_from_torch_state_dict(state_dict: Mapping[str, Any], config: MagnetConfig) -> dict:
  """Maps every tensor of an audiocraft LM state dict to MagnetLM params (float32 numpy arrays).

  Args:
    state_dict: audiocraft key -> tensor (torch.Tensor or numpy array).
    config: the config the params are for; layout follows `config.scan_layers`.

  Raises:
    CheckpointError: codebook count, card or any shape disagrees with `config`, or a key is missing/unknown.
  """
  sd = {k: _numpy(v) for k, v in state_dict.items()}
  cond_name = _condition_name(sd)
  _check_keys(sd, config, cond_name)
  cond = f'condition_provider.conditioners.{cond_name}.output_proj.'
  layers = [_layer_params(sd, f'transformer.layers.{i}.', config) for i in range(config.num_layers)]
  if config.scan_layers:
    transformer = {'layers': _stack(layers)}
  else:
    transformer = {f'layers_{i}': layer for i, layer in enumerate(layers)}
  return {
      'embedder': {'emb': np.stack([sd[f'emb.{k}.weight'] for k in range(config.n_q)])},
      'cond_proj': {'kernel': sd[cond + 'weight'].T, 'bias': sd[cond + 'bias']},
      'transformer': transformer,
      'out_norm': {'scale': sd['out_norm.weight'], 'bias': sd['out_norm.bias']},
      'heads': {'kernel': np.stack([sd[f'linears.{k}.weight'].T for k in range(config.n_q)])},
  }


def _stack(trees: list[dict]) -> dict:
  return {k: _stack([t[k] for t in trees]) if isinstance(trees[0][k], dict) else np.stack([t[k] for t in trees])
          for k in trees[0]}


def _get(tree: Mapping, dotted: str, default=None):
  for part in dotted.split('.'):
    if not isinstance(tree, Mapping) or part not in tree:
      return default
    tree = tree[part]
  return tree


def _check_layout(cfg: Mapping, n_q: int) -> None:
  """Accepts the three LM layouts this package decodes, by `lm_model` and `codebooks_pattern`:
  MAGNeT (transformer_lm_magnet, parallel), Hybrid-MAGNeT (transformer_lm_magnet, delay; `decoding.hybrid`) and
  MusicGen (transformer_lm, causal, delays 0 .. K-1 with no flattening or extra initial steps; the rescorer)."""
  lm_model = cfg.get('lm_model', 'transformer_lm_magnet')
  modeling = _get(cfg, 'codebooks_pattern.modeling', 'parallel' if lm_model == 'transformer_lm_magnet' else None)
  if lm_model == 'transformer_lm_magnet' and modeling in ('parallel', 'delay'):
    return
  delay = _get(cfg, 'codebooks_pattern.delay') or {}
  musicgen = (list(delay.get('delays', range(n_q))) == list(range(n_q)) and not delay.get('flatten_first', 0)
              and not delay.get('empty_initial', 0) and bool(_get(cfg, 'transformer_lm.causal', True)))
  if lm_model == 'transformer_lm' and modeling == 'delay' and musicgen:
    return
  raise CheckpointError(f'unsupported LM layout: lm_model={lm_model!r}, codebooks_pattern={modeling!r} '
                        f'{dict(delay)}; expected MAGNeT (transformer_lm_magnet, parallel), Hybrid-MAGNeT '
                        '(transformer_lm_magnet, delay) or MusicGen (transformer_lm, causal, delays 0..K-1)')


def config_from_xp_cfg(xp_cfg: str | Mapping, frame_rate: int = 50, **overrides) -> MagnetConfig:
  """MagnetConfig from a checkpoint's `xp.cfg` (audiocraft's resolved Hydra config, as YAML text or a dict).

  The LM sizes come from `transformer_lm`, the segment from `dataset.segment_duration`, the span length from
  `masking.span_len` (audiocraft's loader overrides `transformer_lm.span_len` with it), the text width from the
  conditioner's T5 name. `frame_rate` is the codec's (audiocraft sets it from the compression model).
  """
  cfg = yaml.safe_load(xp_cfg) if isinstance(xp_cfg, str) else xp_cfg
  lm = _get(cfg, 'transformer_lm')
  if not isinstance(lm, Mapping):
    raise CheckpointError('xp.cfg has no transformer_lm section: not an audiocraft LM checkpoint')
  _check_layout(cfg, int(lm.get('n_q', 4)))
  t5_name = None
  for cond in (_get(cfg, 'conditioners') or {}).values():
    if isinstance(cond, Mapping) and cond.get('model') == 't5':
      t5_name = _get(cond, 't5.name')
  text_dim = {'t5-small': 512, 't5-base': 768, 't5-large': 1024, 't5-3b': 1024, 't5-11b': 1024,
              'google/flan-t5-base': 768, 'google/flan-t5-large': 1024}.get(t5_name, 768)
  values = dict(
      n_q=int(lm.get('n_q', 4)), card=int(lm.get('card', 2048)), dim=int(lm['dim']),
      num_heads=int(lm['num_heads']), num_layers=int(lm['num_layers']),
      hidden_scale=int(lm.get('hidden_scale', 4)), text_dim=text_dim,
      subcodes_context=int(lm.get('subcodes_context', 5)),
      span_len=int(_get(cfg, 'masking.span_len', 3)),
      causal=bool(lm.get('causal', cfg.get('lm_model') == 'transformer_lm')), frame_rate=int(frame_rate),
      codebooks_pattern=str(_get(cfg, 'codebooks_pattern.modeling', 'parallel')),
      segment_duration=float(_get(cfg, 'dataset.segment_duration', 10)))
  values.update(overrides)
  return MagnetConfig(**values)


def load_audiocraft_lm(path: str | os.PathLike, **config_overrides) -> tuple[MagnetConfig, dict]:
  """Reads an audiocraft-format LM checkpoint (`state_dict.bin` of a released MAGNeT/MusicGen folder, or the
  folder itself) without torch.

  Args:
    path: the file, or a folder holding `state_dict.bin`.
    **config_overrides: MagnetConfig fields to set on top of the checkpoint's (e.g. dtype, scan_layers).

  Returns:
    (config, params) with params as float32 numpy arrays (put them on devices with jax.device_put).
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    path = os.path.join(path, 'state_dict.bin')
  return lm_from_package(load(path), path, **config_overrides)


def lm_from_package(package: Any, path: str, **config_overrides) -> tuple[MagnetConfig, dict]:
  """(config, params) from an already unpickled `state_dict.bin` package ({'best_state', 'xp.cfg', ...});
  `path` only names the file in errors."""
  if not isinstance(package, Mapping) or 'xp.cfg' not in package:
    raise CheckpointError(f"{path}: expected audiocraft's exported layout {{'best_state', 'xp.cfg'}}")
  state = package.get('best_state') or package.get('fsdp_best_state')
  if not isinstance(state, Mapping):
    raise CheckpointError(f'{path}: no best_state in the checkpoint')
  cond_name = _condition_name(state)
  text_dim = np.shape(state[f'condition_provider.conditioners.{cond_name}.output_proj.weight'])[1]
  config = config_from_xp_cfg(package['xp.cfg'], **{'text_dim': int(text_dim), **config_overrides})
  try:
    return config, params_from_torch_state_dict(state, config)
  except CheckpointError as e:
    raise CheckpointError(f'{path}: {e}') from e
