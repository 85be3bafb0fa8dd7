"""The accelerators an ahead-of-time plan (`training/aot.py`) can target: each chip's peak bfloat16 FLOP/s, HBM
capacity and bandwidth and interconnect bandwidth, with the public page each figure comes from; and the slice names
people rent (`v5e-16`, `v5p-128`) as the topology names libtpu describes (`v5e:4x4`, `v5p:4x4x4`).

Figures are per chip, as the vendor states them (dense bfloat16, no sparsity). The interconnect figure is the
vendor's per-chip bidirectional ICI / NVLink bandwidth: an upper bound for what one collective gets.
"""
import dataclasses
import math
import re

GB = 1e9
GIB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str              # what people call it: 'v5e', 'H100'.
  device_kind: str       # what jax's `Device.device_kind` says ('TPU v5 lite', 'NVIDIA H100 80GB HBM3').
  peak_flops: float      # dense bfloat16 FLOP/s.
  hbm_bytes: float       # HBM capacity.
  hbm_bandwidth: float   # HBM bytes/s.
  ici_bandwidth: float   # chip-to-chip bytes/s (bidirectional ICI on TPUs, NVLink on GPUs).
  cores_per_chip: int    # TensorCores a slice name counts per chip (v5p-8 = 4 chips); 1 where names count chips.
  source: str            # the public page of the figures.


CHIPS: tuple[Chip, ...] = (
    Chip('v5e', 'TPU v5 lite', 197e12, 16 * GIB, 819 * GB, 400 * GB, 1, 'https://cloud.google.com/tpu/docs/v5e'),
    Chip('v5p', 'TPU v5', 459e12, 95 * GIB, 2765 * GB, 1200 * GB, 2, 'https://cloud.google.com/tpu/docs/v5p'),
    Chip('v6e', 'TPU v6 lite', 918e12, 32 * GIB, 1638 * GB, 800 * GB, 1, 'https://cloud.google.com/tpu/docs/v6e'),
    # GPUs: matched by device_kind in this order (the PCIe H100 before the SXM one).
    Chip('H100 PCIe', 'H100 PCIe', 756e12, 80 * GIB, 2000 * GB, 600 * GB, 1,
         'https://www.nvidia.com/en-us/data-center/h100/'),
    Chip('H100', 'H100', 989e12, 80 * GIB, 3350 * GB, 900 * GB, 1, 'https://www.nvidia.com/en-us/data-center/h100/'),
    Chip('H200', 'H200', 989e12, 141 * GB, 4800 * GB, 900 * GB, 1, 'https://www.nvidia.com/en-us/data-center/h200/'),
    Chip('A100', 'A100', 312e12, 80 * GIB, 2039 * GB, 600 * GB, 1, 'https://www.nvidia.com/en-us/data-center/a100/'),
)
_TPU_GENERATIONS = ('v5e', 'v5p', 'v6e')


def chip_for(device_kind: str) -> Chip:
  """The chip whose `device_kind` is part of jax's device_kind (exact for TPUs, a substring for GPUs).

  Raises:
    ValueError: a device this table does not know.
  """
  for chip in CHIPS:
    if device_kind == chip.device_kind or (not chip.device_kind.startswith('TPU') and chip.device_kind in device_kind):
      return chip
  raise ValueError(f'no figures for device kind {device_kind!r}; known: {", ".join(c.device_kind for c in CHIPS)} '
                   '(add it to magnet_jax/training/chips.py)')


def by_name(name: str) -> Chip:
  return next(c for c in CHIPS if c.name == name)


def _grid(chips: int, dims: int) -> str | None:
  """The most cubic power-of-two grid of `chips` chips in `dims` dimensions, smallest first ('4x4', '2x2x4')."""
  if chips < 1 or chips & (chips - 1):
    return None
  exponents = [0] * dims
  for i in range(int(math.log2(chips))):
    exponents[(dims - 1 - i) % dims] += 1
  return 'x'.join(str(2 ** e) for e in sorted(exponents))


def topology_name(name: str) -> str:
  """A topology name `get_topology_desc` accepts: 'v5e:4x4' as is; a slice name ('v5e-16', 'v5litepod-16',
  'v5p-128', 'v6e-256') mapped to its chips' grid ('v5e:4x4', 'v5p:4x4x4', 'v6e:16x16'). v5p slice names
  count TensorCores (two per chip), v5e and v6e count chips.

  Raises:
    ValueError: a name of neither form, or a count that is no power of two.
  """
  name = name.strip()
  if re.fullmatch(r'v\d+[a-z]*:\d+(x\d+)*', name):
    return name
  match = re.fullmatch(r'(v\d+[a-z]*?)(?:litepod)?-(\d+)', name)
  generation = match and {'v5': 'v5e', 'v5lite': 'v5e'}.get(match.group(1), match.group(1))
  if not match or generation not in _TPU_GENERATIONS:
    raise ValueError(f'--topology={name!r}: expected a topology (v5e:4x4, v5p:2x2x4, v6e:8x8) or a slice name '
                     f'({", ".join(g + "-N" for g in _TPU_GENERATIONS)})')
  chip = by_name(generation)
  cores = int(match.group(2))
  grid = _grid(cores // chip.cores_per_chip, 3 if generation == 'v5p' else 2)
  if cores % chip.cores_per_chip or grid is None:
    raise ValueError(f'--topology={name!r}: {cores} {"cores" if chip.cores_per_chip > 1 else "chips"} is not a '
                     'slice size (a power of two)')
  if generation == 'v5p' and grid.startswith('1x'):  # 3D slices below a cube keep z = 1 last
    grid = 'x'.join(sorted(grid.split('x'), key=int, reverse=False)[1:] + ['1'])
  return f'{generation}:{grid}'
