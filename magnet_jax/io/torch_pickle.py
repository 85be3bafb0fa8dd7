"""Reads `torch.save` files without torch: a restricted unpickler over both of torch's file formats.

- zip format (torch >= 1.6): `<root>/data.pkl`, a pickle whose tensors are persistent references
  ('storage', type, key, location, numel) to raw little-endian storages stored as `<root>/data/<key>`;
- legacy format (torch < 1.6, or `torch.save(..., _use_new_zipfile_serialization=False)`; e.g. torchvggish's
  `vggish-10086976.pth`): one stream of pickles, the magic number, the protocol version (1001), a sys_info dict,
  the object, whose references are ('storage', type, root_key, location, numel, view_metadata), the list of
  storage keys, then per key in that order an 8-byte little-endian element count and the storage's raw bytes. A
  reference with view_metadata (view_key, offset, numel; only torch < 1.0 wrote them) is that slice of its root
  storage. The still older tar format is refused by name.

Only the globals a state dict needs are allowed (tensor/parameter rebuilders, storage types, OrderedDict); anything
else is refused with an error naming it, so a checkpoint can never run code. Tensors come back as numpy arrays
(bfloat16 via ml_dtypes).

An untrusted file can never make the reader crash, read outside a storage or allocate more than the file
justifies: every tensor's shape, strides and offset are checked against its storage (non-negative, in bounds)
before anything is copied; a storage must hold exactly its declared elements (a zip entry's size; a legacy
storage's element count, which must also fit in the bytes left in the file, checked before reading); a legacy
view must lie inside its root storage; and every byte the reader allocates (inflated zip entries, the legacy
file's bytes, copied-out tensors) counts against `MAX_EXPANSION` x the file's size, checked before inflating or
copying (a zip bomb is refused from its header). Every failure is one CheckpointError naming the file and the
tensor (its path in the loaded structure, e.g. `best_state/emb.0.weight`) or storage.
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
# Bytes a load may allocate (inflated entries or the legacy file's bytes + tensors copied out), as a multiple of the
# file's size, plus a small allowance. A torch.save file stores its storages uncompressed, so a state dict needs
# about 2x (3x where tensors share a storage, e.g. tied embeddings); a zip bomb or a stride-0 giant view needs far
# more.
MAX_EXPANSION = 8
_ALLOWANCE = 1 << 20
# The legacy format's first two pickles (torch/serialization.py's MAGIC_NUMBER and PROTOCOL_VERSION).
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001
_LEGACY_HEAD = 4096  # bytes enough for the magic number's pickle in any protocol
# What a corrupt file can raise from the pickle and zip machinery (each becomes one CheckpointError).
_CORRUPT = (KeyError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, TypeError, IndexError,
            AttributeError, OverflowError, RecursionError, MemoryError, OSError)


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


@dataclasses.dataclass(eq=False)
class _LegacyStorage:
  """A storage a legacy pickle references: its bytes follow the pickle, so `array` is set once they are read. A view
  (torch < 1.0) is `numel` elements of its `root` from `offset`, checked to lie inside it when referenced."""
  key: str
  dtype: np.dtype
  numel: int
  root: '_LegacyStorage | None' = None
  offset: int = 0
  array: np.ndarray | None = None

  def resolve(self) -> np.ndarray | None:
    if self.root is None:
      return self.array
    root = self.root.resolve()
    return None if root is None else root[self.offset:self.offset + self.numel]


def _rebuild_tensor(storage, offset, size, stride, *unused):
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
  return data


_ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,  # torch < 0.4's record: the same first four arguments
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
}


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


class _Budget:
  """The bytes a load may still allocate."""

  def __init__(self, path: str):
    self.path = path
    self.size = os.path.getsize(path)
    self.left = MAX_EXPANSION * self.size + _ALLOWANCE

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

  def storage(self, raw: bytes, offset: int, numel: int, dtype: np.dtype, key: str) -> np.ndarray:
    """`numel` elements of `dtype` at `offset` in `raw` (read-only, no copy; bool storages converted, charged)."""
    storage = np.frombuffer(raw, dtype=dtype, count=numel, offset=offset)
    if storage.dtype == np.bool_:  # any nonzero byte is True, as in torch
      self.take(numel, f'storage {key}')
      storage = storage.view(np.uint8) != 0
    return storage

  def tensor(self, record: _Tensor, name: str) -> np.ndarray:
    """The tensor of a record, after checking its metadata against its storage."""
    storage, offset, size, stride = record.storage, record.offset, record.size, record.stride
    where = f'{self.path}: tensor {name}'
    if isinstance(storage, _LegacyStorage):
      storage = storage.resolve()
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
    return np.array(view, order='C')  # a copy: never a view of the file's bytes

  def materialize(self, value):
    """`value` with every tensor record replaced by its array. Objects the pickle shares (its memo) are converted
    once, so a structure that references itself exponentially often costs its size, not its expansion."""
    done: dict[int, Any] = {}

    def walk(value, name):
      if isinstance(value, _LegacyStorage):  # a bare storage, as the zip format returns one: a copy
        value = value.resolve()
        if value is None:
          raise CheckpointError(f'{self.path}: {name or "<root>"} is a storage without bytes')
        self.take(value.nbytes, f'storage {name or "<root>"}')
        return value.copy()
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


class _Restricted(pickle.Unpickler):
  """Allows only `_ALLOWED` and the storage types as globals, and no persistent ids (the subclasses read theirs)."""

  def __init__(self, file, path: str):
    super().__init__(file)
    self._path = path

  def find_class(self, module: str, name: str):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise CheckpointError(f'{self._path}: refusing to unpickle {module}.{name} (not part of a state dict)')

  def persistent_load(self, pid):
    raise CheckpointError(f'{self._path}: unexpected persistent id {str(pid)[:80]!r}')

  def storage_reference(self, pid, length: int) -> tuple[_StorageType, str, int]:
    """The (type, key, numel) of a ('storage', type, key, location, numel, ...) reference of `length` fields."""
    if not (isinstance(pid, tuple) and len(pid) == length and pid[0] == 'storage'):
      raise CheckpointError(f'{self._path}: unknown persistent id {str(pid)[:80]!r}')
    _, storage_type, key, _, numel = pid[:5]
    if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _is_int(numel) or numel < 0:
      raise CheckpointError(f'{self._path}: malformed storage reference {str(pid)[:80]!r}')
    return storage_type, key, numel


class _ZipUnpickler(_Restricted):

  def __init__(self, file, archive: zipfile.ZipFile, root: str, budget: _Budget):
    super().__init__(file, budget.path)
    self._archive, self._root, self._budget = archive, root, budget
    self._storages: dict[str, np.ndarray] = {}  # torch's loader reads each storage once, however often referenced

  def persistent_load(self, pid):
    storage_type, key, numel = self.storage_reference(pid, 5)
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
    storage = self._budget.storage(self._budget.read(self._archive, name), 0, numel, storage_type.dtype, key)
    self._storages[key] = storage
    return storage


class _LegacyUnpickler(_Restricted):
  """The object pickle of a legacy file: storage references become `_LegacyStorage`s, filled after the pickle."""

  def __init__(self, file, path: str):
    super().__init__(file, path)
    self.storages: dict[str, _LegacyStorage] = {}  # root storages by key
    self._views: dict[str, _LegacyStorage] = {}

  def persistent_load(self, pid):
    storage_type, key, numel = self.storage_reference(pid, 6)
    root = self.storages.setdefault(key, _LegacyStorage(key, storage_type.dtype, numel))
    if root.dtype != storage_type.dtype or root.numel != numel:
      raise CheckpointError(f'{self._path}: storage {key} is referenced as two different types or sizes')
    view = pid[5]
    if view is None:
      return root
    if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str) and _is_int(view[1])
            and _is_int(view[2])):
      raise CheckpointError(f'{self._path}: malformed view of storage {key}: {str(view)[:80]!r}')
    view_key, offset, size = view
    if offset < 0 or size < 0 or offset + size > numel:
      raise CheckpointError(f'{self._path}: view {view_key} of storage {key} ({size} elements from {offset}) '
                            f'reaches past its {numel} elements')
    known = self._views.setdefault(view_key, _LegacyStorage(view_key, root.dtype, size, root, offset))
    if (known.root, known.offset, known.numel) != (root, offset, size):
      raise CheckpointError(f'{self._path}: view {view_key} is referenced as two different slices')
    return known


def _load_zip(path: str) -> Any:
  try:
    archive = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError) as e:
    raise CheckpointError(f'{path}: not a torch zip checkpoint (truncated?): {e}') from e
  with archive:
    pickles = [n for n in archive.namelist() if n.endswith('/data.pkl')]
    if len(pickles) != 1:
      raise CheckpointError(f'{path}: expected one data.pkl in the archive, found {len(pickles)}')
    root = pickles[0][:-len('/data.pkl')]
    budget = _Budget(path)
    data = budget.read(archive, pickles[0])
    return budget.materialize(_ZipUnpickler(io.BytesIO(data), archive, root, budget).load())


def _load_legacy(path: str) -> Any:
  with open(path, 'rb') as f:
    head = f.read(_LEGACY_HEAD)
  if head[257:262] == b'ustar':
    raise CheckpointError(f'{path}: the oldest torch.save format (a tar archive), not supported: re-save it with '
                          'torch, or convert it to .safetensors')
  try:
    magic = _Restricted(io.BytesIO(head), path).load()
  except (CheckpointError, *_CORRUPT):  # garbage: the one message below
    magic = None
  if not (_is_int(magic) and magic == LEGACY_MAGIC):
    raise CheckpointError(f'{path}: not a torch checkpoint (neither a torch.save zip archive nor a legacy '
                          'torch.save file: no magic number)')
  budget = _Budget(path)
  budget.take(budget.size, 'the legacy file')
  with open(path, 'rb') as f:
    data = f.read(budget.size)
  stream = io.BytesIO(data)
  _Restricted(stream, path).load()  # the magic number, checked above
  version = _Restricted(stream, path).load()
  if not (_is_int(version) and version == LEGACY_PROTOCOL):
    raise CheckpointError(f'{path}: unsupported legacy torch.save protocol version {str(version)[:40]}')
  sys_info = _Restricted(stream, path).load()
  if not isinstance(sys_info, dict) or sys_info.get('little_endian') is False:
    raise CheckpointError(f'{path}: legacy torch.save file not written on a little-endian machine (sys_info '
                          f'{str(sys_info)[:80]})')
  unpickler = _LegacyUnpickler(stream, path)
  result = unpickler.load()
  keys = _Restricted(stream, path).load()
  if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
    raise CheckpointError(f'{path}: malformed list of storage keys {str(keys)[:80]}')
  if len(set(keys)) != len(keys) or set(keys) != set(unpickler.storages):
    missing = sorted(set(unpickler.storages) - set(keys))
    raise CheckpointError(f'{path}: the storage keys after the pickle ({len(keys)}) do not match the storages it '
                          f'references ({len(unpickler.storages)}; missing {missing[:3]})')
  at = stream.tell()
  for key in keys:
    storage = unpickler.storages[key]
    itemsize = storage.dtype.itemsize
    if at + 8 > len(data):
      raise CheckpointError(f'{path}: truncated: the file ends before storage {key}\'s element count')
    count = int.from_bytes(data[at:at + 8], 'little', signed=True)
    at += 8
    if count < 0 or count * itemsize > len(data) - at:
      raise CheckpointError(f'{path}: storage {key} declares {count} elements ({count * itemsize} bytes) but only '
                            f'{len(data) - at} bytes are left in the file (truncated or crafted)')
    if count != storage.numel:
      raise CheckpointError(f'{path}: storage {key} holds {count} elements but is referenced with {storage.numel}')
    storage.array = budget.storage(data, at, count, storage.dtype, key)
    at += count * itemsize
  return budget.materialize(result)


def load(path: str | os.PathLike) -> Any:
  """Loads a `torch.save` file (zip or legacy format) as nested python containers of numpy arrays.

  Raises:
    CheckpointError: the file is missing, not a torch checkpoint, truncated, holds non-state-dict objects, or a
      tensor whose metadata does not fit its storage or would allocate more than the file justifies (see the
      module docstring).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise CheckpointError(f'checkpoint file not found: {path}')
  try:
    with open(path, 'rb') as f:
      is_zip = f.read(4) == b'PK\x03\x04'  # how torch itself tells the formats apart
    return _load_zip(path) if is_zip else _load_legacy(path)
  except CheckpointError:
    raise
  except _CORRUPT as e:
    raise CheckpointError(f'{path}: corrupt or truncated checkpoint: {type(e).__name__}: {e}') from e
