"""The restricted torch.save reader against crafted files: tensor metadata out of bounds, negative strides, stride-0
giants, zip bombs and malformed records are one CheckpointError naming the tensor, never a crash, a read outside
the storage or a giant allocation (a property test over random records, zip and legacy); real torch files read
exactly, in both formats. Legacy-format files (torch < 1.6): crafted element counts, truncations, views, globals
and headers."""
import collections
import io
import pickle
import subprocess
import sys
import tarfile
import zipfile

import ml_dtypes
import numpy as np
import pytest

from magnet_jax.io import torch_pickle
from magnet_jax.io.errors import CheckpointError

DTYPES = {'FloatStorage': np.float32, 'HalfStorage': np.float16, 'BFloat16Storage': ml_dtypes.bfloat16,
          'LongStorage': np.int64, 'IntStorage': np.int32, 'ByteStorage': np.uint8, 'DoubleStorage': np.float64}


class _Global:
  """A global written by name (torch itself is not needed to write a torch.save file)."""

  def __init__(self, module: str, name: str):
    self.module, self.name = module, name

  def __call__(self, *args):  # pickle wants a callable; only its name is written
    raise NotImplementedError


class _Storage:
  def __init__(self, kind: str, key: str, numel):
    self.pid = ('storage', _Global('torch', kind), key, 'cpu', numel)


class _LegacyStorage(_Storage):
  """A legacy-format reference: one more field, the view (view_key, offset, numel) or None."""

  def __init__(self, kind: str, key: str, numel, view=None):
    super().__init__(kind, key, numel)
    self.pid += (view,)


class _Record:
  """One `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` call, fields as given."""

  def __init__(self, storage, offset, size, stride):
    self.args = (storage, offset, size, stride, False, collections.OrderedDict())

  def __reduce__(self):
    return _Global('torch._utils', '_rebuild_tensor_v2'), self.args


class _Writer(pickle._Pickler):
  dispatch = dict(pickle._Pickler.dispatch)

  def persistent_id(self, obj):
    return obj.pid if isinstance(obj, _Storage) else None

  def save_global_name(self, obj, name=None):
    self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode())
    self.memoize(obj)

  dispatch[_Global] = save_global_name


def write_checkpoint(path, state, storages: dict, compress: bool = False):
  """A torch.save-layout zip: archive/data.pkl (`state`) and archive/data/<key> (raw bytes per key)."""
  buffer = io.BytesIO()
  _Writer(buffer, protocol=2).dump(state)
  method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
  with zipfile.ZipFile(path, 'w', method) as archive:
    archive.writestr('archive/data.pkl', buffer.getvalue())
    for key, raw in storages.items():
      archive.writestr(f'archive/data/{key}', raw)


SYS_INFO = {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {'short': 2, 'int': 4, 'long': 4}}


def write_legacy(path, state, storages, keys=None, magic=torch_pickle.LEGACY_MAGIC, version=1001,
                 sys_info=SYS_INFO):
  """A legacy torch.save stream: magic, version, sys_info, `state`, the key list (`keys`, default the storages'),
  then per storage (key, raw bytes[, element count]) its 8-byte little-endian count (default bytes / itemsize of
  the float32 default, or as given) and its bytes."""
  buffer = io.BytesIO()
  for header in (magic, version, sys_info):
    pickle.dump(header, buffer, protocol=2)
  _Writer(buffer, protocol=2).dump(state)
  pickle.dump([key for key, *_ in storages] if keys is None else keys, buffer, protocol=2)
  for _, raw, *count in storages:
    buffer.write(int(count[0] if count else len(raw) // 4).to_bytes(8, 'little', signed=True) + raw)
  path.write_bytes(buffer.getvalue())
  return path


def _one_tensor(tmp_path, values, offset, size, stride, numel=None, kind='FloatStorage'):
  values = np.asarray(values, DTYPES[kind])
  storage = _Storage(kind, '0', values.size if numel is None else numel)
  path = tmp_path / 'state_dict.bin'
  write_checkpoint(path, {'layer.weight': _Record(storage, offset, size, stride)}, {'0': values.tobytes()})
  return path


def test_views_read_exactly_as_written(tmp_path):
  values = np.arange(24, dtype=np.float32)
  checks = [(0, (4, 6), (6, 1)), (2, (3, 2), (1, 8)), (5, (), ()), (0, (0, 3), (3, 1)), (24, (0,), (1,)),
            (1, (2, 3, 2), (0, 4, 2))]
  for offset, size, stride in checks:
    expected = np.zeros(size, np.float32)
    for index in np.ndindex(*size):
      expected[index] = values[offset + sum(i * s for i, s in zip(index, stride, strict=True))]
    path = tmp_path / f'view-{offset}.bin'
    storage = _Storage('FloatStorage', '0', 24)
    write_checkpoint(path, {'w': _Record(storage, offset, size, stride)}, {'0': values.tobytes()})
    np.testing.assert_array_equal(torch_pickle.load(path)['w'], expected)


@pytest.mark.parametrize('offset,size,stride,numel,message', [
    (0, (4,), (-1,), None, 'negative offset, size or stride'),
    (-3, (2,), (1,), None, 'negative offset'),
    (0, (5,), (1,), None, r'reach past its storage of 4 elements'),
    (3, (2, 2), (1, 1), None, 'reach past'),
    (9, (), (), None, 'reach past'),
    (0, (2 ** 62, 2 ** 62), (0, 0), None, 'larger than any array can be'),
    (0, (2 ** 31, 2 ** 20), (0, 0), None, 'more than the file can justify'),
    (0, (1 << 24,), (0,), None, 'more than the file can justify'),
    (0, (2,), (1,), 1000, 'declares 1000 elements but its zip entry holds 16 bytes'),
    (0, (2, 2), (1,), None, 'malformed metadata'),
    (0.5, (2,), (1,), None, 'malformed metadata'),
    (0, (2,), ('1',), None, 'malformed metadata'),
    (0, (True,), (1,), None, 'malformed metadata'),
])
def test_crafted_metadata_is_one_line_naming_the_tensor(tmp_path, offset, size, stride, numel, message):
  path = _one_tensor(tmp_path, [1, 2, 3, 4], offset, size, stride, numel)
  with pytest.raises(CheckpointError, match=message) as error:
    torch_pickle.load(path)
  assert '\n' not in str(error.value) and ('tensor layer.weight' in str(error.value) or 'storage 0' in str(error.value))


def test_zip_bomb_is_refused_before_inflating(tmp_path):
  """A 64 MiB storage of zeros deflates to ~64 KiB: the header's size is refused without reading the entry."""
  numel = 16 << 20
  path = tmp_path / 'bomb.bin'
  storage = _Storage('FloatStorage', '0', numel)
  write_checkpoint(path, {'w': _Record(storage, 0, (numel,), (1,))}, {'0': bytes(4 * numel)}, compress=True)
  assert path.stat().st_size < 1 << 20
  with pytest.raises(CheckpointError, match=r'zip entry archive/data/0 needs 67108864 bytes, more than the file'):
    torch_pickle.load(path)


def test_shared_and_self_referencing_structures(tmp_path):
  storage = _Storage('FloatStorage', '0', 4)
  shared = _Record(storage, 0, (2, 2), (2, 1))
  nested: list = []
  for _ in range(200):  # 2**200 paths through 200 lists: converted once each
    nested = [nested, nested]
  write_checkpoint(tmp_path / 'a.bin', {'a': shared, 'b': shared, 'deep': nested},
                   {'0': np.ones(4, np.float32).tobytes()})
  loaded = torch_pickle.load(tmp_path / 'a.bin')
  assert loaded['a'] is loaded['b'] and loaded['a'].shape == (2, 2)


def _random_case(rng: np.random.Generator):
  """A random tensor record: usually well-formed, often out of bounds, sometimes malformed or giant."""
  kind = rng.choice(list(DTYPES))
  numel = int(rng.integers(0, 40))
  ndim = int(rng.integers(0, 4))
  size = [int(rng.integers(0, 5)) for _ in range(ndim)]
  stride = [int(rng.integers(-1, 9)) for _ in range(ndim)]
  offset = int(rng.integers(-1, numel + 3))
  declared = numel
  draw = rng.random()
  if draw < 0.1 and ndim:
    size[int(rng.integers(ndim))] = int(rng.choice([2 ** 31, 2 ** 40, 2 ** 62]))
  elif draw < 0.15 and ndim:
    stride[int(rng.integers(ndim))] = int(rng.choice([2 ** 31, 2 ** 62, -2 ** 62]))
  elif draw < 0.2:
    declared = int(rng.choice([numel + 1, max(numel - 1, 0), 2 ** 40]))
  elif draw < 0.25:
    offset = rng.choice([2 ** 63, None, 1.0, 'x'])
  elif draw < 0.3 and ndim:
    stride = stride[:-1]
  values = (rng.standard_normal(numel) * 100).astype(DTYPES[kind])
  return kind, values, declared, offset, size, stride


GIANT = 'giant'


def _expected(values, declared, offset, size, stride):
  """The oracle: the array a correct reader returns, None where it must refuse, GIANT where it may."""
  if declared != values.size or not isinstance(offset, int) or len(size) != len(stride):
    return None
  if offset < 0 or min(size + stride, default=0) < 0:
    return None
  if not all(size):  # an empty tensor: any strides, the offset within the storage, a size numpy can hold
    try:
      return np.zeros(size, values.dtype) if offset <= values.size else None
    except ValueError:
      return None
  if offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) >= values.size:
    return None
  if np.prod(size, dtype=object) > 10 ** 6:  # a stride-0 giant in bounds: the reader may refuse it (too big)
    return GIANT
  index = offset + sum(np.indices(size)[k] * stride[k] for k in range(len(size))) if size else np.array(offset)
  return values[index]


def test_random_tensor_records_load_correctly_or_fail_cleanly(tmp_path):
  """Property: for any record, the reader returns exactly the oracle's array or raises CheckpointError (stored zip,
  deflated zip and legacy files in turn)."""
  rng = np.random.default_rng(20)
  outcomes = collections.Counter()
  for case in range(400):
    kind, values, declared, offset, size, stride = _random_case(rng)
    path = tmp_path / f'{case}.bin'
    if case % 3 == 2:  # legacy: the pickle declares `declared` elements, the count before the bytes the true one
      record = _Record(_LegacyStorage(kind, '0', declared), offset, tuple(size), tuple(stride))
      write_legacy(path, {'t': record}, [('0', values.tobytes(), values.size)])
    else:
      storage = _Storage(kind, '0', declared)
      write_checkpoint(path, {'t': _Record(storage, offset, tuple(size), tuple(stride))}, {'0': values.tobytes()},
                       compress=bool(case % 3))
    expected = _expected(values, declared, offset, size, stride)
    try:
      loaded = torch_pickle.load(path)['t']
    except CheckpointError as e:
      assert '\n' not in str(e)
      assert expected is None or expected is GIANT, (case, offset, size, stride, str(e))
      outcomes['refused'] += 1
      continue
    assert expected is not None and expected is not GIANT, (case, offset, size, stride)
    assert loaded.dtype == values.dtype and loaded.shape == tuple(size)
    np.testing.assert_array_equal(loaded.reshape(-1).view(np.uint8), expected.reshape(-1).view(np.uint8))
    outcomes['loaded'] += 1
  assert outcomes['loaded'] > 100 and outcomes['refused'] > 100, outcomes


def test_random_bytes_in_the_pickle_fail_cleanly(tmp_path):
  """Corrupting data.pkl byte by byte: a CheckpointError or a load, never another exception or a crash."""
  storage = _Storage('FloatStorage', '0', 6)
  buffer = io.BytesIO()
  _Writer(buffer, protocol=2).dump({'w': _Record(storage, 0, (2, 3), (3, 1)), 'n': [1, 2.0, 'x']})
  clean = buffer.getvalue()
  rng = np.random.default_rng(0)
  for case in range(150):
    data = bytearray(clean)
    for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
      data[at] = int(rng.integers(0, 256))
    path = tmp_path / f'{case}.bin'
    with zipfile.ZipFile(path, 'w') as archive:
      archive.writestr('archive/data.pkl', bytes(data))
      archive.writestr('archive/data/0', np.arange(6, dtype=np.float32).tobytes())
    try:
      torch_pickle.load(path)
    except CheckpointError as e:
      assert '\n' not in str(e)


def test_crash_cases_do_not_kill_the_process(tmp_path):
  """The cases that segfaulted the unchecked reader, in a child process: rc 0 and one CheckpointError each."""
  cases = [(0, (4,), (-(2 ** 40),)), (2 ** 40, (4,), (1,)), (0, (2, 2 ** 30), (2 ** 30, 1))]
  paths = [str(_one_tensor(tmp_path / str(i), [1, 2, 3, 4], *case)) for i, case in enumerate(cases) if
           (tmp_path / str(i)).mkdir() is None]
  code = ('import sys\nfrom magnet_jax.io import torch_pickle\nfrom magnet_jax.io.errors import CheckpointError\n'
          'for path in sys.argv[1:]:\n  try:\n    torch_pickle.load(path)\n    print("loaded")\n'
          '  except CheckpointError as e:\n    print("refused")\n')
  out = subprocess.run([sys.executable, '-c', code, *paths], capture_output=True, text=True, timeout=120)
  assert out.returncode == 0 and out.stdout.split() == ['refused'] * 3, (out.returncode, out.stderr[-2000:])


def test_real_torch_views_match_torch(tmp_path):
  torch = pytest.importorskip('torch')
  base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
  state = {'t': base.t(), 'slice': base[1:, ::3], 'bf16': base.to(torch.bfloat16)[2], 'scalar': base[3, 4],
           'empty': base[:0], 'tied': base, 'flag': base > 30}
  torch.save(state, tmp_path / 'views.bin')
  loaded = torch_pickle.load(tmp_path / 'views.bin')
  for key, value in state.items():
    expected = value.float().numpy() if value.dtype == torch.bfloat16 else value.numpy()
    np.testing.assert_array_equal(np.asarray(loaded[key], expected.dtype), expected, err_msg=key)


def _torch_state(torch):
  """A state dict of every dtype a checkpoint holds, tied weights, views sharing a storage, a parameter and nesting."""
  base = torch.arange(60, dtype=torch.float32).reshape(6, 10) - 20.5
  model = collections.OrderedDict([
      ('emb.weight', base), ('head.weight', base),  # tied: one tensor twice
      ('proj.weight', base.t()), ('rows', base[1:4]), ('cols', base[:, ::3]),  # views of the same storage
      ('half', base.half()), ('bf16', base.to(torch.bfloat16)[2]), ('steps', torch.arange(-3, 9)),
      ('mask', base > 0), ('param', torch.nn.Parameter(base[2:, 1:5].clone())), ('scalar', base[3, 4]),
      ('empty', base[:0])])
  return {'model': model, 'ema': {'decay': 0.999, 'model': collections.OrderedDict(w=base.t()[::2].half())},
          'epoch': 7, 'names': ['a', ('b', 1)]}


def _assert_same(got, expected, where=''):
  """Equal structure (container types, keys, leaves) and bitwise-equal arrays of equal dtype."""
  assert type(got) is type(expected), (where, type(got), type(expected))
  if isinstance(expected, dict):
    assert list(got) == list(expected), where
    for key in expected:
      _assert_same(got[key], expected[key], f'{where}/{key}')
  elif isinstance(expected, list | tuple):
    assert len(got) == len(expected), where
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
      _assert_same(a, b, f'{where}[{i}]')
  elif isinstance(expected, np.ndarray):
    assert got.dtype == expected.dtype and got.shape == expected.shape, where
    np.testing.assert_array_equal(got.reshape(-1).view(np.uint8), expected.reshape(-1).view(np.uint8), err_msg=where)
  else:
    assert got == expected, where


def test_legacy_files_load_as_the_zip_format(tmp_path):
  """torch.save(..., _use_new_zipfile_serialization=False) of float32/16, bfloat16, int64, bool, tied and
  transposed tensors in nested dicts loads exactly as the zip file of the same state, and as torch reads it."""
  torch = pytest.importorskip('torch')
  state = _torch_state(torch)
  torch.save(state, tmp_path / 'zip.pth')
  torch.save(state, tmp_path / 'legacy.pth', _use_new_zipfile_serialization=False)
  assert (tmp_path / 'legacy.pth').read_bytes()[:2] == b'\x80\x02' and zipfile.is_zipfile(tmp_path / 'zip.pth')
  legacy, from_zip = torch_pickle.load(tmp_path / 'legacy.pth'), torch_pickle.load(tmp_path / 'zip.pth')
  _assert_same(legacy, from_zip)
  model = legacy['model']
  assert model['emb.weight'] is model['head.weight'] and model['bf16'].dtype == ml_dtypes.bfloat16
  for key, value in state['model'].items():
    expected = value.detach().float().numpy() if value.dtype == torch.bfloat16 else value.detach().numpy()
    np.testing.assert_array_equal(np.asarray(model[key], expected.dtype), expected, err_msg=key)
  np.testing.assert_array_equal(legacy['ema']['model']['w'], state['ema']['model']['w'].numpy())


def test_legacy_views_and_shared_storages(tmp_path):
  """Torch < 1.0 storage views (a slice of a root storage) read their slice; one root read once for all."""
  values = np.arange(8, dtype=np.float32)
  view = _LegacyStorage('FloatStorage', 'root', 8, ('v1', 2, 4))
  state = {'view': _Record(view, 1, (3,), (1,)), 'root': _Record(_LegacyStorage('FloatStorage', 'root', 8), 0,
                                                                   (2, 4), (4, 1)),
           'again': _Record(_LegacyStorage('FloatStorage', 'root', 8, ('v1', 2, 4)), 0, (2, 2), (1, 2))}
  loaded = torch_pickle.load(write_legacy(tmp_path / 'views.pth', state, [('root', values.tobytes())]))
  np.testing.assert_array_equal(loaded['view'], [3, 4, 5])
  np.testing.assert_array_equal(loaded['root'], values.reshape(2, 4))
  np.testing.assert_array_equal(loaded['again'], [[2, 4], [3, 5]])
  past_view = {'w': _Record(view, 2, (3,), (1,))}  # inside the root, past the view's 4 elements
  with pytest.raises(CheckpointError, match='tensor w: .* reach past its storage of 4 elements'):
    torch_pickle.load(write_legacy(tmp_path / 'past.pth', past_view, [('root', values.tobytes())]))


def _legacy_case(tmp_path, case: str):
  """A crafted legacy file (one float32 tensor of 4 elements, storage key '0') with one defect."""
  values = np.arange(4, dtype=np.float32).tobytes()
  record = _Record(_LegacyStorage('FloatStorage', '0', 4), 0, (4,), (1,))
  kwargs, storages, state = {}, [('0', values)], {'w': record}
  if case == 'global':
    state = {'w': record, 'x': _Call(_Global('os', 'system'), ('echo pwned',))}
  elif case == 'huge count':
    record = _Record(_LegacyStorage('FloatStorage', '0', 2 ** 40), 0, (4,), (1,))
    state, storages = {'w': record}, [('0', values, 2 ** 40)]
  elif case == 'negative count':
    storages = [('0', values, -1)]
  elif case == 'count mismatch':
    storages = [('0', values[:12], 3)]
  elif case == 'truncated':
    storages = [('0', values[:13], 4)]
  elif case == 'magic':
    kwargs = {'magic': 12345}
  elif case == 'version':
    kwargs = {'version': 1000}
  elif case == 'big endian':
    kwargs = {'sys_info': dict(SYS_INFO, little_endian=False)}
  elif case == 'missing key':
    kwargs = {'keys': []}
  elif case == 'extra key':
    kwargs, storages = {'keys': ['0', '1']}, [('0', values), ('1', values)]
  elif case == 'view past root':
    state = {'w': _Record(_LegacyStorage('FloatStorage', '0', 4, ('v', 2, 3)), 0, (1,), (1,))}
  elif case == 'malformed view':
    state = {'w': _Record(_LegacyStorage('FloatStorage', '0', 4, ('v', -1)), 0, (1,), (1,))}
  elif case == 'two types':
    state = {'w': record, 'h': _Record(_LegacyStorage('HalfStorage', '0', 4), 0, (4,), (1,))}
  elif case == 'zip reference':
    state = {'w': _Record(_Storage('FloatStorage', '0', 4), 0, (4,), (1,))}
  return write_legacy(tmp_path / f'{case}.pth', state, storages, **kwargs)


class _Call:
  def __init__(self, function, args):
    self.function, self.args = function, args

  def __reduce__(self):
    return self.function, self.args


@pytest.mark.parametrize('case,message', [
    ('global', 'refusing to unpickle os.system'),
    ('huge count', r'storage 0 declares 1099511627776 elements \(4398046511104 bytes\) but only 16 bytes are left'),
    ('negative count', 'storage 0 declares -1 elements'),
    ('count mismatch', 'storage 0 holds 3 elements but is referenced with 4'),
    ('truncated', r'storage 0 declares 4 elements \(16 bytes\) but only 13 bytes are left in the file'),
    ('magic', 'not a torch checkpoint .*no magic number'),
    ('version', 'unsupported legacy torch.save protocol version 1000'),
    ('big endian', 'not written on a little-endian machine'),
    ('missing key', r'storage keys after the pickle \(0\) do not match the storages it references \(1'),
    ('extra key', 'do not match'),
    ('view past root', r'view v of storage 0 \(3 elements from 2\) reaches past its 4 elements'),
    ('malformed view', 'malformed view of storage 0'),
    ('two types', 'storage 0 is referenced as two different types or sizes'),
    ('zip reference', 'unknown persistent id'),
])
def test_crafted_legacy_files_are_one_line(tmp_path, case, message):
  path = _legacy_case(tmp_path, case)
  with pytest.raises(CheckpointError, match=message) as error:
    torch_pickle.load(path)
  assert '\n' not in str(error.value) and str(path) in str(error.value)


def test_truncated_legacy_files_fail_cleanly(tmp_path):
  """A legacy file cut at every byte: one CheckpointError each (only the whole file loads)."""
  state = {'a': _Record(_LegacyStorage('FloatStorage', '0', 4), 0, (2, 2), (2, 1)),
           'b': _Record(_LegacyStorage('LongStorage', '1', 2), 0, (2,), (1,))}
  storages = [('0', np.arange(4, dtype=np.float32).tobytes()), ('1', np.arange(2).tobytes(), 2)]
  data = write_legacy(tmp_path / 'whole.pth', state, storages).read_bytes()
  assert torch_pickle.load(tmp_path / 'whole.pth')['b'].tolist() == [0, 1]
  for cut in range(len(data)):
    path = tmp_path / 'cut.pth'
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError) as error:
      torch_pickle.load(path)
    assert '\n' not in str(error.value), cut


def test_random_bytes_in_a_legacy_file_fail_cleanly(tmp_path):
  """Corrupting a legacy file byte by byte: a CheckpointError or a load, never another exception."""
  state = {'w': _Record(_LegacyStorage('FloatStorage', '0', 6), 0, (2, 3), (3, 1)), 'n': [1, 2.0, 'x']}
  clean = write_legacy(tmp_path / 'clean.pth', state, [('0', np.arange(6, dtype=np.float32).tobytes())]).read_bytes()
  rng = np.random.default_rng(1)
  for case in range(150):
    data = bytearray(clean)
    for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
      data[at] = int(rng.integers(0, 256))
    path = tmp_path / f'{case}.pth'
    path.write_bytes(bytes(data))
    try:
      torch_pickle.load(path)
    except CheckpointError as e:
      assert '\n' not in str(e)


def test_other_files_are_one_line(tmp_path):
  """Garbage, an empty file and the oldest (tar) torch format: one line saying what the file is not."""
  (tmp_path / 'garbage.pth').write_bytes(b'\x80\x02not a checkpoint')
  (tmp_path / 'empty.pth').write_bytes(b'')
  with tarfile.open(tmp_path / 'old.tar', 'w') as archive:
    info = tarfile.TarInfo('pickle')
    info.size = 3
    archive.addfile(info, io.BytesIO(b'abc'))
  (tmp_path / 'cut.zip').write_bytes(b'PK\x03\x04' + bytes(40))
  for name, message in [('garbage.pth', 'not a torch checkpoint'), ('empty.pth', 'not a torch checkpoint'),
                        ('old.tar', 'oldest torch.save format'), ('cut.zip', 'not a torch zip checkpoint')]:
    with pytest.raises(CheckpointError, match=message) as error:
      torch_pickle.load(tmp_path / name)
    assert '\n' not in str(error.value) and name in str(error.value)
