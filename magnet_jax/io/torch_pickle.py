"""Reads `torch.save` files without torch: a restricted unpickler over the zip container.

A `torch.save` file (zip format, torch >= 1.6) holds `<root>/data.pkl`, a pickle whose tensors are persistent
references to raw little-endian storages stored as `<root>/data/<key>`. Only the globals a state dict needs are
allowed (tensor/parameter rebuilders, storage types, OrderedDict); anything else is refused with an error naming
it, so a checkpoint can never run code. Tensors come back as numpy arrays (bfloat16 via ml_dtypes).

An untrusted file can never make the reader crash, read outside a storage or allocate more than the file
justifies: every tensor's shape, strides and offset are checked against its storage (non-negative, in bounds)
before anything is copied, a storage's entry must hold exactly its declared elements, and every byte the reader
allocates (inflated zip entries, copied-out tensors) counts against `MAX_EXPANSION` x the file's size, checked
before inflating or copying (a zip bomb is refused from its header). Every failure is one CheckpointError naming
the file and the tensor (its path in the loaded structure, e.g. `best_state/emb.0.weight`).
"""
import collections
import dataclasses
import io
import math
import os
import pickle
import zipfile
from typing import Any

import ml_dtypes
import numpy as np

from magnet_jax.io.errors import CheckpointError

_STORAGE_DTYPES = {
    'DoubleStorage': np.float64,
    'FloatStorage': np.float32,
    'HalfStorage': np.float16,
    'BFloat16Storage': ml_dtypes.bfloat16,
    'LongStorage': np.int64,
    'IntStorage': np.int32,
    'ShortStorage': np.int16,
    'CharStorage': np.int8,
    'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}
# Bytes a load may allocate (inflated entries + tensors copied out), as a multiple of the file's size, plus a
# small allowance. A torch.save file stores its entries uncompressed, so a state dict needs about 1x (2-3x where
# tensors share a storage, e.g. tied embeddings); a zip bomb or a stride-0 giant view needs far more.
MAX_EXPANSION = 8
_ALLOWANCE = 1 << 20


class _StorageType:
  def __init__(self, name: str):
    self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


@dataclasses.dataclass(eq=False)
class _Tensor:
  """A tensor record as pickled (torch._utils._rebuild_tensor_v2's arguments), checked and copied out by `_Budget`
  once its name in the structure is known."""
  storage: Any
  offset: Any
  size: Any
  stride: Any


def _rebuild_tensor(storage, offset, size, stride, *unused):
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
  return data


_ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
}


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


class _Budget:
  """The bytes a load may still allocate."""

  def __init__(self, path: str):
    self.path = path
    self.left = MAX_EXPANSION * os.path.getsize(path) + _ALLOWANCE

  def take(self, nbytes: int, what: str) -> None:
    if nbytes > self.left:
      raise CheckpointError(f'{self.path}: {what} needs {nbytes} bytes, more than the file can justify '
                            f'({MAX_EXPANSION}x its size); a crafted or corrupt checkpoint')
    self.left -= nbytes

  def read(self, archive: zipfile.ZipFile, name: str) -> bytes:
    """An entry's bytes, its declared uncompressed size charged before inflating."""
    info = archive.getinfo(name)
    self.take(info.file_size, f'zip entry {name}')
    with archive.open(info) as f:
      raw = f.read(info.file_size)
    if len(raw) != info.file_size:
      raise CheckpointError(f'{self.path}: zip entry {name} is truncated')
    return raw

  def tensor(self, record: _Tensor, name: str) -> np.ndarray:
    """The tensor of a record, after checking its metadata against its storage."""
    storage, offset, size, stride = record.storage, record.offset, record.size, record.stride
    where = f'{self.path}: tensor {name}'
    if not isinstance(storage, np.ndarray):
      raise CheckpointError(f'{where}: its storage is not a storage reference')
    if not (isinstance(size, tuple | list) and isinstance(stride, tuple | list) and len(size) == len(stride)
            and all(map(_is_int, (offset, *size, *stride)))):
      raise CheckpointError(f'{where}: malformed metadata (offset {offset!r}, size {size!r}, stride {stride!r})')
    if offset < 0 or min((*size, *stride), default=0) < 0:
      raise CheckpointError(f'{where}: negative offset, size or stride (offset {offset}, size {tuple(size)}, '
                            f'stride {tuple(stride)})')
    if math.prod(max(n, 1) for n in size) * storage.dtype.itemsize > np.iinfo(np.intp).max:
      raise CheckpointError(f'{where}: size {tuple(size)} is larger than any array can be')
    count = math.prod(size)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) if count else offset - 1
    if last >= storage.size or offset > storage.size:
      raise CheckpointError(f'{where}: size {tuple(size)}, stride {tuple(stride)} and offset {offset} reach past '
                            f'its storage of {storage.size} elements')
    self.take(count * storage.dtype.itemsize, f'tensor {name}')
    if not count:
      return np.zeros(size, storage.dtype)
    # In bounds, every stride of a dimension longer than 1 is below the storage's size; the others are never used.
    strides = tuple(s * storage.dtype.itemsize if n > 1 else 0 for n, s in zip(size, stride, strict=True))
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size), strides=strides)
    return np.array(view, order='C')  # a copy: never a view of the zip's bytes

  def materialize(self, value):
    """`value` with every tensor record replaced by its array. Objects the pickle shares (its memo) are converted
    once, so a structure that references itself exponentially often costs its size, not its expansion."""
    done: dict[int, Any] = {}

    def walk(value, name):
      if not isinstance(value, _Tensor | dict | list | tuple):
        return value
      if id(value) in done:
        if done[id(value)] is None:
          raise CheckpointError(f'{self.path}: {name or "<root>"} contains itself (not a state dict)')
        return done[id(value)]
      done[id(value)] = None
      if isinstance(value, _Tensor):
        result = self.tensor(value, name or '<root>')
      elif isinstance(value, dict):
        items = [(key, walk(item, f'{name}/{key}' if name else str(key))) for key, item in value.items()]
        result = type(value)(items) if isinstance(value, collections.OrderedDict) else dict(items)
      else:
        result = type(value)(walk(item, f'{name}[{i}]') for i, item in enumerate(value))
      done[id(value)] = result
      return result

    return walk(value, '')


class _Unpickler(pickle.Unpickler):

  def __init__(self, file, archive: zipfile.ZipFile, root: str, budget: _Budget):
    super().__init__(file)
    self._archive, self._root, self._budget = archive, root, budget
    self._path = budget.path
    self._storages: dict[str, np.ndarray] = {}  # torch's loader reads each storage once, however often referenced

  def find_class(self, module: str, name: str):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise CheckpointError(f'{self._path}: refusing to unpickle {module}.{name} (not part of a state dict)')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage'):
      raise CheckpointError(f'{self._path}: unknown persistent id {str(pid)[:80]!r}')
    _, storage_type, key, _, numel = pid
    if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _is_int(numel) or numel < 0:
      raise CheckpointError(f'{self._path}: malformed storage reference {str(pid)[:80]!r}')
    if key in self._storages:
      storage = self._storages[key]
      if storage.dtype != storage_type.dtype or storage.size != numel:
        raise CheckpointError(f'{self._path}: storage {key} is referenced as two different types or sizes')
      return storage
    name = f'{self._root}/data/{key}'
    size = self._archive.getinfo(name).file_size
    if size != numel * storage_type.dtype.itemsize:
      raise CheckpointError(f'{self._path}: storage {key} ({storage_type.name}) declares {numel} elements but its '
                            f'zip entry holds {size} bytes')
    storage = np.frombuffer(self._budget.read(self._archive, name), dtype=storage_type.dtype)
    if storage.dtype == np.bool_:  # any nonzero byte is True, as in torch
      storage = storage.view(np.uint8) != 0
    self._storages[key] = storage
    return storage


def load(path: str | os.PathLike) -> Any:
  """Loads a `torch.save` file (zip format) as nested python containers of numpy arrays.

  Raises:
    CheckpointError: the file is missing, not a torch zip checkpoint, truncated, holds non-state-dict objects, or a
      tensor whose metadata does not fit its storage or would allocate more than the file justifies (see the
      module docstring).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise CheckpointError(f'checkpoint file not found: {path}')
  try:
    archive = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError) as e:
    raise CheckpointError(f'{path}: not a torch zip checkpoint (truncated or legacy format?): {e}') from e
  with archive:
    pickles = [n for n in archive.namelist() if n.endswith('/data.pkl')]
    if len(pickles) != 1:
      raise CheckpointError(f'{path}: expected one data.pkl in the archive, found {len(pickles)}')
    root = pickles[0][:-len('/data.pkl')]
    budget = _Budget(path)
    try:
      data = budget.read(archive, pickles[0])
      return budget.materialize(_Unpickler(io.BytesIO(data), archive, root, budget).load())
    except CheckpointError:
      raise
    except (KeyError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, TypeError, IndexError,
            AttributeError, OverflowError, RecursionError, MemoryError, OSError) as e:
      raise CheckpointError(f'{path}: corrupt or truncated checkpoint: {type(e).__name__}: {e}') from e
