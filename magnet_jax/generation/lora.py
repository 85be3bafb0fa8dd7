"""LoRA: low-rank adapters on a frozen MagnetLM, their file format, and merging them into plain params (what
generation needs to apply an adapter; training them, from the config to their init and axes, is training/lora.py).

An adapter set mirrors the params: the kernel at `path` gets {'a': [*L, *I, r], 'b': [*L, r, *O]} (e.g.
adapters['transformer']['layers']['self_attn']['query']['a']) for the targeted kernels of shape
[*L, *I, *O] (L: the scanned layer axis when model.scan_layers, I / O: the kernel's input / output dimensions,
e.g. query [L, D, N, H] has I = (D,), O = (N, H); out [L, N, H, D] has I = (N, H), O = (D,)). The model runs on
merged kernels W + scale a @ b (scale = alpha / rank), built by `merge` inside the jitted step, so the forward pass
is the unchanged MagnetLM and b = 0 at initialisation gives the base model's logits exactly. The adapters carry
the base kernel's logical axes on I and O (r is replicated), so every sharding preset shards them like the base.

Dropout (`lora.dropout`) drops input features of the adapter path (rows of `a`), one draw per step, rescaled by
1 / (1 - p): a merged-kernel form of PEFT's dropout on the adapter input, which draws per token instead.

File: one safetensors file with the adapter tensors ('<path>/a', '<path>/b') and, in its header metadata under
'magnet_jax_lora', a JSON object {'rank', 'alpha', 'targets', 'model': the base MagnetConfig's architecture}.
"""
import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from safetensors import SafetensorError
from safetensors.numpy import safe_open, save_file

from magnet_jax.io.errors import CheckpointError
from magnet_jax.io.files import atomic_write

# Kernels an adapter may target -> (input dims, output dims) after the layer axis.
KERNEL_DIMS = {'query': (1, 2), 'key': (1, 2), 'value': (1, 2), 'out': (2, 1), 'wi': (1, 1), 'wo': (1, 1)}
TARGET_GROUPS = {  # the names lora.targets accepts, besides regular expressions over kernel paths
    'self_attn': r'/self_attn/(query|key|value|out)$',
    'cross_attn': r'/cross_attention/(query|key|value|out)$',
    'mlp': r'/mlp/(wi|wo)$',
}
METADATA_KEY = 'magnet_jax_lora'
# MagnetConfig fields an adapter's kernels depend on; they must match the model it is applied to.
ARCHITECTURE = ('dim', 'num_heads', 'num_layers', 'hidden_scale', 'n_q', 'card', 'text_dim', 'scan_layers')


@dataclasses.dataclass(frozen=True)
class LoraConfig:
  rank: int
  alpha: float
  dropout: float = 0.0
  targets: tuple[str, ...] = tuple(TARGET_GROUPS)

  @property
  def scale(self) -> float:
    return self.alpha / self.rank


def flat_adapters(adapters: Mapping) -> dict[str, dict]:
  """Nested adapters -> {kernel path: {'a', 'b'}}."""
  flat: dict[str, dict] = {}
  for key, value in traverse_util.flatten_dict(dict(adapters), sep='/').items():
    kernel, _, which = key.rpartition('/')
    flat.setdefault(kernel, {})[which] = value
  return flat


def nest_adapters(flat: Mapping[str, Mapping]) -> dict:
  """{kernel path: {'a', 'b'}} -> nested like the params."""
  return traverse_util.unflatten_dict({f'{p}/{k}': v for p, ab in flat.items() for k, v in ab.items()}, sep='/')


def kernel_dims(shape: Sequence[int], name: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
  """(layer dims, input dims, output dims) of a kernel shape; `name` is its last path part (a KERNEL_DIMS key)."""
  n_in, n_out = KERNEL_DIMS[name]
  lead = len(shape) - n_in - n_out
  return tuple(shape[:lead]), tuple(shape[lead:lead + n_in]), tuple(shape[lead + n_in:])


def delta(a: jax.Array, b: jax.Array, shape: Sequence[int], name: str) -> jax.Array:
  """a [*L, *I, r] @ b [*L, r, *O] -> [*L, *I, *O] (float32)."""
  lead, dims_in, dims_out = kernel_dims(shape, name)
  rank = a.shape[-1]
  a2 = a.reshape(*lead, int(np.prod(dims_in)), rank)
  b2 = b.reshape(*lead, rank, int(np.prod(dims_out)))
  return jnp.matmul(a2, b2, preferred_element_type=jnp.float32).reshape(tuple(shape))


def merge(base: Mapping, adapters: Mapping, scale: float, dropout: float = 0.0, rng: jax.Array | None = None):
  """Params with every adapted kernel W replaced by W + scale a @ b (jittable; `rng` only for dropout > 0)."""
  flat = dict(traverse_util.flatten_dict(dict(base), sep='/'))
  for i, (path, ab) in enumerate(sorted(flat_adapters(adapters).items())):
    a = ab['a']
    if dropout and rng is not None:
      keep = jax.random.bernoulli(jax.random.fold_in(rng, i), 1.0 - dropout, a.shape[:-1] + (1,))
      a = jnp.where(keep, a / (1.0 - dropout), 0.0)
    kernel = flat[path]
    flat[path] = (kernel + scale * delta(a, ab['b'], kernel.shape, path.rsplit('/', 1)[-1])).astype(kernel.dtype)
  return traverse_util.unflatten_dict(flat, sep='/')


def save_adapter(path: str | os.PathLike, adapters: Mapping, lora: LoraConfig, architecture: Mapping) -> None:
  """Writes an adapter file (atomically); `architecture` holds the base model's ARCHITECTURE fields."""
  tensors = {k: np.asarray(v, np.float32)
             for k, v in traverse_util.flatten_dict(jax.device_get(dict(adapters)), sep='/').items()}
  header = {'rank': lora.rank, 'alpha': lora.alpha, 'targets': list(lora.targets),
            'model': {k: architecture[k] for k in ARCHITECTURE}}
  atomic_write(os.fspath(path), lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(header)}))


def load_adapter(path: str | os.PathLike) -> tuple[dict, dict]:
  """(nested adapters as numpy, header) of an adapter file, checked: the header (JSON object; rank an integer >= 1
  equal to every a's and b's; alpha a finite number; targets a list; model an object of the ARCHITECTURE fields)
  and the tensors (a [..., r] and b [..., r, ...] of rank >= 2, finite).

  Raises:
    CheckpointError: missing, unreadable, or not a valid adapter file (one line naming the file).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise CheckpointError(f'LoRA adapter file not found: {path}')
  try:
    with safe_open(path, framework='numpy') as f:
      metadata = f.metadata() or {}
      tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
  except (SafetensorError, OSError) as e:
    raise CheckpointError(f'{path}: unreadable safetensors file ({e})') from e
  if METADATA_KEY not in metadata:
    raise CheckpointError(f'{path}: not a magnet-jax LoRA adapter file (no {METADATA_KEY!r} metadata)')
  header = _header(path, metadata[METADATA_KEY])
  if not tensors or any(not k.endswith(('/a', '/b')) or k.count('/') < 1 for k in tensors):
    raise CheckpointError(f'{path}: adapter tensors must be named KERNEL_PATH/a and KERNEL_PATH/b')
  adapters = flat_adapters(traverse_util.unflatten_dict(tensors, sep='/'))
  for kernel, ab in adapters.items():
    if set(ab) != {'a', 'b'}:
      raise CheckpointError(f'{path}: every adapted kernel needs both an a and a b tensor ({kernel} has '
                            f'{sorted(ab)})')
    a, b = ab['a'], ab['b']
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != header['rank']:
      raise CheckpointError(f'{path}: {kernel} has a {a.shape} / b {b.shape}, not rank-{header["rank"]} factors')
    for name, x in ab.items():
      if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
        raise CheckpointError(f'{path}: {kernel}/{name} holds NaN or inf (or is not floating point)')
  return nest_adapters(adapters), header


def adapted_kernels(path: str | os.PathLike) -> set[str]:
  """The kernel paths an adapter file adapts, from its tensor names alone (for a file `load_adapter` accepted)."""
  with safe_open(os.fspath(path), framework='numpy') as f:
    return {name.rsplit('/', 1)[0] for name in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)


def _header(path: str, text: str) -> dict:
  """The adapter file's metadata, checked (see `load_adapter`)."""
  try:
    header = json.loads(text)
  except ValueError as e:
    raise CheckpointError(f'{path}: the {METADATA_KEY!r} metadata is not JSON ({e})') from e
  if not isinstance(header, dict):
    raise CheckpointError(f'{path}: the {METADATA_KEY!r} metadata must be a JSON object, got {text[:40]!r}')
  rank, alpha, model = header.get('rank'), header.get('alpha'), header.get('model')
  if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
    raise CheckpointError(f'{path}: rank must be an integer >= 1, got {rank!r}')
  if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha):
    raise CheckpointError(f'{path}: alpha must be a finite number, got {alpha!r}')
  if not isinstance(header.get('targets'), list):
    raise CheckpointError(f'{path}: targets must be a list, got {header.get("targets")!r}')
  if not isinstance(model, dict) or set(model) != set(ARCHITECTURE):
    raise CheckpointError(f'{path}: model must be an object of {", ".join(ARCHITECTURE)}, got {model!r}'[:300])
  return header


def parse_spec(spec: str) -> tuple[str, float]:
  """'FILE[:scale]' -> (FILE, scale) (scale 1 by default)."""
  file, sep, scale = spec.rpartition(':')
  if sep and file and re.fullmatch(r'[-+]?[0-9.]+(e[-+]?[0-9]+)?', scale):
    if not math.isfinite(float(scale)):
      raise ValueError(f'LoRA adapter {file}: scale {scale} is not a finite number')
    return file, float(scale)
  return spec, 1.0


def apply_adapters(params: Mapping, config: Any, adapters: Sequence[tuple[str, float]]) -> dict:
  """`params` with each (adapter FILE, strength) merged in turn: W + strength * alpha / rank * a @ b.

  Args:
    params: the base LM's params.
    config: its MagnetConfig (checked against each adapter's recorded architecture).
    adapters: (file, strength) pairs; strength 1 applies an adapter as trained.

  Raises:
    CheckpointError: an unreadable adapter file; ValueError: an adapter made for another architecture or whose
      kernels do not fit.
  """
  merged = params
  for file, strength in adapters:
    if not math.isfinite(strength):
      raise ValueError(f'LoRA adapter {file}: scale {strength} is not a finite number')
    tensors, header = load_adapter(file)
    for field, value in header['model'].items():
      if getattr(config, field) != value:
        raise ValueError(f'LoRA adapter {file} was trained for {field}={value}, the model has '
                         f'{field}={getattr(config, field)}')
    flat = traverse_util.flatten_dict(dict(merged), sep='/')
    for path, ab in flat_adapters(tensors).items():
      if path not in flat:
        raise ValueError(f'LoRA adapter {file}: the model has no kernel {path}')
      lead, dims_in, dims_out = kernel_dims(flat[path].shape, path.rsplit('/', 1)[-1])
      rank = ab['a'].shape[-1]
      if ab['a'].shape != (*lead, *dims_in, rank) or ab['b'].shape != (*lead, rank, *dims_out):
        raise ValueError(f'LoRA adapter {file}: {path} has a {ab["a"].shape} / b {ab["b"].shape}, which do not fit '
                         f'the kernel {flat[path].shape}')
    scale = strength * LoraConfig(int(header['rank']), float(header['alpha'])).scale
    merged = jax.device_get(jax.jit(merge, static_argnums=2)(merged, tensors, scale))
    flat = traverse_util.flatten_dict(dict(merged), sep='/')
    for path in flat_adapters(tensors):
      if not np.isfinite(np.asarray(flat[path], np.float32)).all():
        raise ValueError(f'LoRA adapter {file} at scale {strength:g} makes {path} non-finite (overflow)')
  return merged
