"""Reads the variables of a TensorFlow checkpoint (a tensor bundle: PREFIX.index + PREFIX.data-0000x-of-0000n)
without TensorFlow.

The .index file is a LevelDB-format table (uncompressed blocks, as TensorFlow writes bundles) mapping each variable
name to a BundleEntryProto (dtype, shape, shard, offset, size); the data files hold the raw little-endian bytes.
Only whole (unsliced) tensors of numeric dtypes are read, which is what `tf.train.Saver` writes for plain variables.
"""
import os
import struct

import numpy as np

from magnet_jax.io.errors import CheckpointError

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + crc32c (4 bytes)
# tensorflow/core/framework/types.proto
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
           10: np.bool_, 19: np.float16}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
  value = shift = 0
  while True:
    byte = buf[pos]
    pos += 1
    value |= (byte & 0x7F) << shift
    if byte < 0x80:
      return value, pos
    shift += 7


def _block_entries(data: bytes, offset: int, size: int, path: str) -> list[tuple[bytes, bytes]]:
  """The (key, value) pairs of one table block (keys are prefix-compressed against the previous key)."""
  if data[offset + size] != 0:
    raise CheckpointError(f'{path}: compressed index blocks are not supported')
  block = data[offset:offset + size]
  num_restarts = struct.unpack_from('<I', block, len(block) - 4)[0]
  end = len(block) - 4 * (num_restarts + 1)
  entries, key, pos = [], b'', 0
  while pos < end:
    shared, pos = _varint(block, pos)
    unshared, pos = _varint(block, pos)
    value_len, pos = _varint(block, pos)
    key = key[:shared] + block[pos:pos + unshared]
    pos += unshared
    entries.append((key, block[pos:pos + value_len]))
    pos += value_len
  return entries


def _fields(message: bytes) -> dict[int, list]:
  """Decodes a protobuf message into {field number: [values]} (varints as int, length-delimited as bytes)."""
  fields, pos = {}, 0
  while pos < len(message):
    tag, pos = _varint(message, pos)
    number, wire = tag >> 3, tag & 7
    if wire == 0:
      value, pos = _varint(message, pos)
    elif wire == 2:
      length, pos = _varint(message, pos)
      value, pos = message[pos:pos + length], pos + length
    elif wire == 5:
      value, pos = struct.unpack_from('<I', message, pos)[0], pos + 4
    elif wire == 1:
      value, pos = struct.unpack_from('<Q', message, pos)[0], pos + 8
    else:
      raise ValueError(f'unsupported protobuf wire type {wire}')
    fields.setdefault(number, []).append(value)
  return fields


def _index(prefix: str) -> dict[str, dict]:
  path = prefix + '.index'
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except FileNotFoundError as e:
    raise CheckpointError(f'no TensorFlow checkpoint index at {path}') from e
  if len(data) < _FOOTER_SIZE or struct.unpack_from('<Q', data, len(data) - 8)[0] != _TABLE_MAGIC:
    raise CheckpointError(f'{path} is not a TensorFlow checkpoint index (bad table magic)')
  footer = data[-_FOOTER_SIZE:]
  _, pos = _varint(footer, 0)  # metaindex handle: unused
  _, pos = _varint(footer, pos)
  index_offset, pos = _varint(footer, pos)
  index_size, _ = _varint(footer, pos)
  entries = {}
  for _, handle in _block_entries(data, index_offset, index_size, path):
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    for key, value in _block_entries(data, offset, size, path):
      if key:  # the empty key holds the bundle header
        entries[key.decode()] = _fields(value)
  return entries


def read_variables(prefix: str) -> dict[str, np.ndarray]:
  """{variable name: array} of the checkpoint PREFIX (PREFIX.index beside PREFIX.data-*-of-*).

  Raises:
    CheckpointError: a missing or malformed index or data file, or an unsupported (string, sliced) variable.
  """
  arrays, shards = {}, {}
  entries = _index(prefix)
  num_shards = 1 + max((entry.get(3, [0])[0] for entry in entries.values()), default=0)
  for name, entry in entries.items():
    dtype = _DTYPES.get(entry.get(1, [0])[0])
    if dtype is None or 7 in entry:
      raise CheckpointError(f'{prefix}: variable {name} has an unsupported dtype or is sliced')
    shape = tuple(_fields(dim).get(1, [0])[0] for dim in _fields(entry[2][0]).get(2, [])) if 2 in entry else ()
    shard, offset, size = entry.get(3, [0])[0], entry.get(4, [0])[0], entry.get(5, [0])[0]
    if shard not in shards:
      path = f'{prefix}.data-{shard:05d}-of-{num_shards:05d}'
      if not os.path.exists(path):
        raise CheckpointError(f'{prefix}: missing data file {path}')
      shards[shard] = np.memmap(path, np.uint8, mode='r')
    raw = np.asarray(shards[shard][offset:offset + size])
    if raw.size != size:
      raise CheckpointError(f'{prefix}: variable {name} runs past the end of its data file')
    arrays[name] = raw.view(np.dtype(dtype).newbyteorder('<')).reshape(shape).copy()
  return arrays
