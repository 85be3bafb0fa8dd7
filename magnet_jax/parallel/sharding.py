"""Meshes and logical-axis sharding rules.

Parameters and activations carry logical axis names (set in `magnet_jax.models`); a preset maps them onto the
two mesh axes, `data` and `model`. Switching between data parallelism, FSDP and tensor parallelism is a config
change (`sharding.preset`, `sharding.mesh`), never a code change.

Logical names: weights `embed` (D), `mlp` (F), `heads` (N), `kv` (H), `vocab` (V or V + 1), `codebooks` (K),
`text_embed` (Dt), `norm`, `layers` (L, scanned); activations `act_batch`, `act_length`, `act_embed`,
`act_heads`, `act_kv`, `act_mlp`.
"""
import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ('data', 'model')

_ACTIVATIONS = (('act_batch', 'data'),)
_TENSOR = (('heads', 'model'), ('mlp', 'model'), ('vocab', 'model'),
           ('act_heads', 'model'), ('act_mlp', 'model'))

# preset -> logical rules. Dimensions not divisible by their mesh axis stay replicated (see `param_shardings`).
PRESETS: dict[str, tuple[tuple[str, str | None], ...]] = {
    # Params replicated, batch split over `data`. Best up to ~1B params per device memory; use mesh model=1.
    'data_parallel': _ACTIVATIONS,
    # Params (and optimizer state) split over `data` along D as well: ZeRO-3 / FSDP memory, same compute layout.
    'fsdp': _ACTIVATIONS + (('embed', 'data'),),
    # Megatron-style: heads / MLP / vocab split over `model`, batch over `data` (data x model meshes).
    'tensor_parallel': _ACTIVATIONS + _TENSOR,
}


def rules_for(preset: str, overrides: Sequence[Sequence[str]] = ()) -> tuple[tuple[str, str | None], ...]:
  """The logical rules of a preset, with `overrides` (pairs logical -> mesh axis) taking precedence."""
  if preset not in PRESETS:
    raise ValueError(f'sharding.preset={preset!r}; expected one of {sorted(PRESETS)}')
  overrides = tuple((str(a), None if b in (None, '', 'none') else str(b)) for a, b in overrides)
  names = {a for a, _ in overrides}
  return overrides + tuple(r for r in PRESETS[preset] if r[0] not in names)


def make_mesh(shape: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Mesh over all (global) devices with axes ('data', 'model'); one size may be -1 (= the rest).

  Raises:
    ValueError: unknown axis, or sizes that do not multiply to the device count.
  """
  devices = list(jax.devices() if devices is None else devices)
  unknown = set(shape) - set(MESH_AXES)
  if unknown:
    raise ValueError(f'sharding.mesh has unknown axes {sorted(unknown)}; expected {MESH_AXES}')
  sizes = [int(shape.get(axis, 1)) for axis in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f'sharding.mesh {dict(shape)}: at most one axis may be -1')
  if -1 in sizes:
    rest = math.prod(s for s in sizes if s != -1)
    if len(devices) % rest:
      raise ValueError(f'sharding.mesh {dict(shape)} does not divide the {len(devices)} devices')
    sizes[sizes.index(-1)] = len(devices) // rest
  if math.prod(sizes) != len(devices):
    raise ValueError(f'sharding.mesh {dict(zip(MESH_AXES, sizes, strict=True))} needs {math.prod(sizes)} devices, '
                     f'{len(devices)} are available')
  return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES),
                       devices=devices)


def _fit(spec: PartitionSpec, shape: Sequence[int], mesh: Mesh) -> PartitionSpec:
  """Drops mesh axes from dimensions they do not divide (e.g. V + 1 = 2049 rows over 4 model shards)."""
  fitted = []
  for axes, size in zip(tuple(spec) + (None,) * (len(shape) - len(spec)), shape, strict=True):
    names = () if axes is None else (axes if isinstance(axes, tuple) else (axes,))
    ways = math.prod(mesh.shape[a] for a in names)
    fitted.append(axes if ways > 1 and size % ways == 0 else None)
  return PartitionSpec(*fitted)


def param_shardings(logical_specs, shapes, mesh: Mesh, rules) -> object:
  """Tree of NamedSharding for params (or anything shaped like them, e.g. optimizer moments).

  Args:
    logical_specs: tree of PartitionSpec of logical names (`magnet_jax.models.params.logical_axes`).
    shapes: tree with the same structure whose leaves have `.shape` (arrays or ShapeDtypeStruct).
    mesh: the device mesh.
    rules: logical -> mesh axis rules (`rules_for`).
  """
  def one(spec, leaf):
    mesh_spec = nn.logical_to_mesh_axes(tuple(spec), rules)
    return NamedSharding(mesh, _fit(mesh_spec, np.shape(leaf) if not hasattr(leaf, 'shape') else leaf.shape,
                                    mesh))
  return jax.tree.map(one, logical_specs, shapes, is_leaf=lambda x: isinstance(x, PartitionSpec))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over `data`, the rest replicated."""
  return NamedSharding(mesh, PartitionSpec('data'))


def batch_part(mesh: Mesh, batch_size: int) -> int:
  """Which of the `process_count` equal, contiguous parts of a global batch this process's devices hold under
  `batch_sharding` (its data source must yield exactly that part; usually, but not always, its process index)."""
  rows = batch_sharding(mesh).addressable_devices_indices_map((batch_size,)).values()
  return min(index[0].start or 0 for index in rows) // (batch_size // jax.process_count())


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())
