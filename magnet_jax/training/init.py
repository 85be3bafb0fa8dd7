"""Initialising a run's LM params from another checkpoint (`init.source`), and re-initialising chosen ones.

`init.source` is one of:
  a released audiocraft folder (or its state_dict.bin)   e.g. the files of facebook/magnet-small-10secs
  an exported magnet-jax folder (pipeline.json + lm.safetensors, `generation.pretrained.save_pipeline`)
  another run's workdir (orbax checkpoints; `init.step`, default the latest); its params (EMA ones if it kept
    them) are restored straight into this run's shardings, so under `fsdp` no device holds the full model
The run itself starts fresh: step 0, new optimizer state, the data from the start.

The source's architecture must match the config: dim, num_layers, num_heads, hidden_scale and the positional
embedding (max_period) exactly (a workdir's from its config.json, the others' from their own config); a parameter
whose shape differs because of n_q, card or text_dim (new heads or embeddings for another codec, a new text
encoder's projection) must be re-initialised with `init.reinit`. A workdir's checkpoint is checked against its
sha256 manifest first (`training.checkpointing`): damage is one line naming the file.
"""
import os
from collections.abc import Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from magnet_jax.io import params as params_io
from magnet_jax.io.audiocraft import load_audiocraft_lm
from magnet_jax.io.errors import CheckpointError
from magnet_jax.models.config import MagnetConfig
from magnet_jax.training import checkpointing, freezing

_EXACT = ('dim', 'num_layers', 'num_heads', 'hidden_scale', 'max_period')  # no re-initialisation can fix these
_SHAPE_FIELDS = ('n_q', 'card', 'text_dim')  # fixable by re-initialising the parameters they shape


def _orbax_params(workdir: str, step: int | None, target) -> dict:
  """The params (EMA ones when saved) of `workdir`'s checkpoint, restored into `target`'s shapes and shardings."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  with ocp.CheckpointManager(directory) as manager:
    steps = manager.all_steps()
  step = max(steps, default=None) if step is None else step
  if step is None or step not in steps:
    raise FileNotFoundError(f'init.source {workdir}: no checkpoint{"" if step is None else f" at step {step}"} '
                            f'(has {sorted(steps)})')
  damage = checkpointing.check_manifest(os.path.join(directory, str(step)))
  if damage is not None:
    raise CheckpointError(f'init.source {workdir}: the checkpoint at step {step} is damaged ({damage}); choose '
                          'another with init.step')
  path = os.path.join(directory, str(step), 'state')
  checkpointer = ocp.PyTreeCheckpointer()
  try:
    saved = checkpointer.metadata(path).item_metadata.tree
    key = 'ema_params' if saved.get('ema_params') else 'params'
    _check_shapes(workdir, saved[key], target, reinit=set())
    restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(
        {key: target}, restore_args={key: ocp.checkpoint_utils.construct_restore_args(target)},
        partial_restore=True))
  except Exception as e:  # noqa: BLE001 (orbax and TensorStore report damage in many types, with long texts)
    if isinstance(e, CheckpointError) or 'init.source' in str(e):
      raise
    reason = ' '.join(str(e).split())[:300] or type(e).__name__
    raise CheckpointError(f'init.source {workdir}: unreadable checkpoint at step {step} ({reason})') from e
  return restored[key]


def _check_shapes(source: str, loaded, target, reinit: set[str], model: MagnetConfig | None = None,
                  source_config: MagnetConfig | None = None) -> None:
  """Every target param not re-initialised must exist in `loaded` with the same shape; one line naming why not."""
  have = {freezing.path_of(p): np.shape(x) if not hasattr(x, 'shape') else tuple(x.shape)
          for p, x in jax.tree_util.tree_leaves_with_path(loaded)}
  for keypath, leaf in jax.tree_util.tree_leaves_with_path(target):
    path = freezing.path_of(keypath)
    if path in reinit or have.get(path) == tuple(leaf.shape):
      continue
    cause = ''
    if model is not None and source_config is not None:
      fields = [f for f in _SHAPE_FIELDS if getattr(model, f) != getattr(source_config, f)]
      cause = ''.join(f'model.{f}={getattr(model, f)} but the source has {f}={getattr(source_config, f)}; '
                      for f in fields)
    found = 'is missing' if path not in have else f'has shape {have[path]}'
    raise ValueError(f'init.source {source}: {cause}parameter {path} {found}, the model needs {tuple(leaf.shape)} '
                     '(re-initialise it with init.reinit, or fix the config)')


def _check_architecture(source: str, model: MagnetConfig, source_config: MagnetConfig) -> None:
  for field in _EXACT:
    if getattr(model, field) != getattr(source_config, field):
      raise ValueError(f'init.source {source}: model.{field}={getattr(model, field)} but the source has '
                       f'{field}={getattr(source_config, field)}')


def _check_workdir_architecture(workdir: str, model: MagnetConfig) -> None:
  """A run workdir's architecture, from the config.json its run wrote (a run from before config.json: shapes only)."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(path):
    return
  try:
    stored = params_io.load_json(path)['model']
    source_config = {field: stored[field] for field in _EXACT}
  except (KeyError, TypeError, ValueError) as e:
    raise CheckpointError(f'init.source {path}: not a run config with the model\'s {", ".join(_EXACT)} ({e})') from e
  for field in _EXACT:
    if getattr(model, field) != source_config[field]:
      raise ValueError(f'init.source {workdir}: model.{field}={getattr(model, field)} but the source has '
                       f'{field}={source_config[field]}')


def _read_host(source: str, model: MagnetConfig) -> tuple[MagnetConfig, dict]:
  """(config, numpy params) of a released or exported folder."""
  if os.path.isfile(os.path.join(source, 'pipeline.json')):
    spec = params_io.load_json(os.path.join(source, 'pipeline.json'))
    try:
      config = MagnetConfig.from_dict({**spec['lm'], 'scan_layers': model.scan_layers})
    except (KeyError, TypeError, ValueError) as e:
      raise CheckpointError(f'init.source {source}/pipeline.json: invalid LM config ({e})') from e
    if spec['lm'].get('scan_layers', True) != model.scan_layers:
      raise ValueError(f'init.source {source}: exported with scan_layers={spec["lm"].get("scan_layers")}, the '
                       f'model has scan_layers={model.scan_layers}')
    return config, params_io.load_params(os.path.join(source, 'lm.safetensors'))
  return load_audiocraft_lm(source, scan_layers=model.scan_layers)


def load_init_params(init: Mapping, model: MagnetConfig, fresh, shardings):
  """The run's initial params: `init.source`'s, with `init.reinit` ones taken from `fresh`, in `shardings`.

  Args:
    init: the config's `init` section (source, step, reinit).
    model: the run's LM config.
    fresh: randomly initialised params on devices (the values for re-initialised paths; the target structure).
    shardings: NamedSharding per param.

  Raises:
    FileNotFoundError: the source does not exist; CheckpointError: it is truncated or not a checkpoint;
    ValueError: an architecture or shape mismatch (one line naming the field and both values), or a reinit
      pattern that matches nothing.
  """
  source = os.path.abspath(os.fspath(init.source))
  reinit = freezing.select(fresh, init.reinit, 'init.reinit') if init.reinit else set()
  if not os.path.exists(source):
    raise FileNotFoundError(f'init.source not found: {source}')
  if os.path.isdir(os.path.join(source, 'checkpoints')):
    _check_workdir_architecture(source, model)
    step = None if int(init.step) < 0 else int(init.step)
    target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), fresh, shardings)
    partial = {k: v for k, v in traverse_util.flatten_dict(target, sep='/').items() if k not in reinit}
    loaded = traverse_util.flatten_dict(_orbax_params(source, step, traverse_util.unflatten_dict(partial, sep='/')),
                                        sep='/')
  else:
    if int(init.step) >= 0:
      raise ValueError(f'init.step={init.step} applies to a run workdir; {source} is a checkpoint folder')
    source_config, host = _read_host(source, model)
    _check_architecture(source, model, source_config)
    _check_shapes(source, host, fresh, reinit, model, source_config)
    host = traverse_util.flatten_dict(host, sep='/')
    flat_shardings = traverse_util.flatten_dict(shardings, sep='/')
    loaded = {k: jax.device_put(np.asarray(host[k], np.float32), flat_shardings[k])
              for k in flat_shardings if k not in reinit}
  flat_fresh = traverse_util.flatten_dict(fresh, sep='/')
  return traverse_util.unflatten_dict({k: flat_fresh[k] if k in reinit else loaded[k] for k in flat_fresh}, sep='/')
