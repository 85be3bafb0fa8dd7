"""LoRA's training side: the config's `lora` section checked into a `LoraConfig`, which kernels the adapters target,
their initialisation and their logical axes. The adapters' layout, file format and merging, which generation needs
to apply a trained adapter, are generation/lora.py.
"""
import re
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from jax.sharding import PartitionSpec

from magnet_jax.generation.lora import KERNEL_DIMS, TARGET_GROUPS, LoraConfig, flat_adapters, kernel_dims, nest_adapters


def config_from(section: Mapping) -> LoraConfig:
  """From the config's `lora` section (rank > 0), checked: one ValueError per bad field."""
  rank, alpha, dropout = int(section['rank']), float(section['alpha']), float(section['dropout'])
  if rank < 1:
    raise ValueError(f'lora.rank must be >= 1 to train adapters, got {rank}')
  if alpha <= 0:
    raise ValueError(f'lora.alpha must be > 0, got {alpha}')
  if not 0.0 <= dropout < 1.0:
    raise ValueError(f'lora.dropout must be in [0, 1), got {dropout}')
  targets = tuple(str(t) for t in section['targets'])
  if not targets:
    raise ValueError('lora.targets is empty; name some of ' + ', '.join(TARGET_GROUPS) + ' or kernel path regexes')
  return LoraConfig(rank, alpha, dropout, targets)


def kernel_paths(params: Mapping) -> list[str]:
  """Paths ('/'-joined) of the kernels adapters can target."""
  flat = traverse_util.flatten_dict(dict(params), sep='/')
  return sorted(p for p in flat if p.rsplit('/', 1)[-1] in KERNEL_DIMS and '/transformer/' in f'/{p}')


def target_paths(params: Mapping, targets: Sequence[str]) -> list[str]:
  """The kernel paths `targets` (group names or regexes) select.

  Raises:
    ValueError: a target is not a valid regex, or selects no kernel.
  """
  candidates = kernel_paths(params)
  chosen = set()
  for target in targets:
    try:
      pattern = re.compile(TARGET_GROUPS.get(target, target))
    except re.error as e:
      raise ValueError(f'lora.targets: {target!r} is not a regular expression ({e})') from e
    hits = [p for p in candidates if pattern.search('/' + p)]
    if not hits:
      raise ValueError(f'lora.targets: {target!r} matches no kernel; kernels are e.g. {candidates[0]!r} (or use '
                       f'{", ".join(TARGET_GROUPS)})')
    chosen.update(hits)
  return sorted(chosen)


def init_adapters(base: Mapping, lora: LoraConfig, rng: jax.Array) -> dict:
  """Adapters for `base` (arrays or ShapeDtypeStructs): a ~ N(0, 1 / fan_in), b = 0 (the base model at init)."""
  flat = traverse_util.flatten_dict(dict(base), sep='/')
  adapters = {}
  for i, path in enumerate(target_paths(base, lora.targets)):
    lead, dims_in, dims_out = kernel_dims(flat[path].shape, path.rsplit('/', 1)[-1])
    fan_in = int(np.prod(dims_in))
    a = jax.random.normal(jax.random.fold_in(rng, i), (*lead, *dims_in, lora.rank), jnp.float32) / np.sqrt(fan_in)
    adapters[path] = {'a': a, 'b': jnp.zeros((*lead, lora.rank, *dims_out), jnp.float32)}
  return nest_adapters(adapters)


def adapter_axes(base_axes: Mapping, base: Mapping, adapters: Mapping) -> dict:
  """Logical PartitionSpecs of `adapters` from the base kernels' (`models.params.logical_axes`); rank replicated."""
  flat_axes = traverse_util.flatten_dict(dict(base_axes), sep='/')
  flat = traverse_util.flatten_dict(dict(base), sep='/')
  specs = {}
  for path in flat_adapters(adapters):
    lead, dims_in, _ = kernel_dims(flat[path].shape, path.rsplit('/', 1)[-1])
    axes = tuple(flat_axes[path]) + (None,) * (len(flat[path].shape) - len(flat_axes[path]))
    split = len(lead) + len(dims_in)
    specs[path] = {'a': PartitionSpec(*axes[:split], None), 'b': PartitionSpec(*axes[:len(lead)], None, *axes[split:])}
  return nest_adapters(specs)
