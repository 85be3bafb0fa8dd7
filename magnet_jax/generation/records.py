"""What is written beside every generated file: its JSON sidecar (prompt, seed, every sampling parameter,
checkpoint, durations, timings, versions). Shared by the command line (`generation.sample_files`) and the server
(`serving`), so a file from either carries the same record."""
import importlib.metadata
import json
import os
import platform
from collections.abc import Mapping

import jax

from magnet_jax.audio import loudness
from magnet_jax.audio.files import AtomicAudioFile
from magnet_jax.io import files
from magnet_jax.io import params as params_io


def sidecar_path(path: str) -> str:
  """The sidecar of an audio file: same stem, .json."""
  return os.path.splitext(path)[0] + '.json'


def read_sidecar(path: str) -> dict | None:
  """The sidecar of the audio file `path`, or None when it has none.

  Raises:
    ValueError: a sidecar that is not a JSON object.
  """
  sidecar = sidecar_path(path)
  if not os.path.isfile(sidecar):
    return None
  try:
    with open(sidecar) as f:
      record = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f'{sidecar}: not a JSON sidecar ({e})') from e
  if not isinstance(record, dict):
    raise ValueError(f'{sidecar}: not a JSON sidecar (a {type(record).__name__}, not an object)')
  return record


def versions() -> dict:
  """Package versions, Python, backend and device kind."""
  found = {name: importlib.metadata.version(name) for name in ('magnet-jax', 'jax', 'jaxlib', 'flax', 'numpy')}
  return {**found, 'python': platform.python_version(), 'backend': jax.default_backend(),
          'device': jax.devices()[0].device_kind}


def finish(writer: AtomicAudioFile, file_format: str, normalize: bool, fields: Mapping, timings: Mapping) -> dict:
  """Publishes `writer`'s file in `file_format` (optionally loudness-normalised) and its sidecar as one unit: both
  are written to temporary files first, then the old sidecar is removed, the audio renamed into place and the
  sidecar last, so an audio file is only ever beside its own sidecar (an interruption between the renames leaves an
  audio file without one: not a finished output).

  Returns:
    The record written to the sidecar: `fields`, audio_s, peak / clipped (and loudness info), timings.

  Raises:
    OSError: a write failed, naming the file (e.g. 'no space left on device writing PATH').
  """
  written = writer.finish(file_format, loudness.normalize if normalize else None)
  record = {**fields, 'audio_s': writer.samples / writer.sample_rate, **written, 'timings': dict(timings)}
  sidecar = sidecar_path(writer.path)
  tmp = files.temporary_beside(sidecar)
  try:
    try:
      params_io.dump_json(tmp, record)
    except OSError as e:
      raise files.write_error(e, sidecar) from e
    if os.path.exists(sidecar):
      os.remove(sidecar)
    writer.publish()
    files.publish(tmp, sidecar)
  except BaseException:
    files.discard(tmp)
    raise
  return record
