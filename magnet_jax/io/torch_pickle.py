"""Reads `torch.save` files without torch: a restricted unpickler over the zip container.

A `torch.save` file (zip format, torch >= 1.6) holds `<root>/data.pkl`, a pickle whose tensors are persistent
references to raw little-endian storages stored as `<root>/data/<key>`. Only the globals a state dict needs are
allowed (tensor/parameter rebuilders, storage types, OrderedDict); anything else is refused with an error naming
it, so a checkpoint can never run code. Tensors come back as numpy arrays (bfloat16 via ml_dtypes).
"""
import collections
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


class _StorageType:
  def __init__(self, name: str):
    self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *unused):
  """torch._utils._rebuild_tensor_v2: a strided view into a flat storage, copied out."""
  if not size:
    return storage[offset].copy()
  itemsize = storage.dtype.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride))
  return np.ascontiguousarray(view)


def _rebuild_parameter(data, *unused):
  return data


_ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):

  def __init__(self, file, archive: zipfile.ZipFile, root: str, path: str):
    super().__init__(file)
    self._archive, self._root, self._path = archive, root, path

  def find_class(self, module: str, name: str):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise CheckpointError(f'{self._path}: refusing to unpickle {module}.{name} (not part of a state dict)')

  def persistent_load(self, pid):
    kind, storage_type, key, _, numel = pid
    if kind != 'storage':
      raise CheckpointError(f'{self._path}: unknown persistent id {kind!r}')
    raw = self._archive.read(f'{self._root}/data/{key}')
    return np.frombuffer(raw, dtype=storage_type.dtype, count=numel)


def load(path: str | os.PathLike) -> Any:
  """Loads a `torch.save` file (zip format) as nested python containers of numpy arrays.

  Raises:
    CheckpointError: the file is missing, not a torch zip checkpoint, truncated, or holds non-state-dict objects.
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
    try:
      with archive.open(pickles[0]) as f:
        return _Unpickler(f, archive, root, path).load()
    except (KeyError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError) as e:
      if isinstance(e, CheckpointError):
        raise
      raise CheckpointError(f'{path}: corrupt or truncated checkpoint: {e}') from e
