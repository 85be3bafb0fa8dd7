"""What is written beside every generated file: its JSON sidecar (prompt, seed, every sampling parameter,
checkpoint, LoRA adapters with their scale and sha256, durations, timings, versions and the source's git commit).
Shared by the command line (`generation.sample_files`) and the server (`serving`), so a file from either carries the
same record; `magnet-jax --replay SIDECAR` regenerates a file from it bit for bit (same backend)."""
import dataclasses
import functools
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence

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
  """Package versions, the source's git commit (None outside a checkout), Python, backend and device kind."""
  found = {name: importlib.metadata.version(name) for name in ('magnet-jax', 'jax', 'jaxlib', 'flax', 'numpy')}
  return {**found, 'source': source_commit(), 'python': platform.python_version(), 'backend': jax.default_backend(),
          'device': jax.devices()[0].device_kind}


@functools.cache
def source_commit() -> str | None:
  """The git commit of the magnet_jax source that runs ('+dirty' with uncommitted changes), None when it is not a
  git checkout (an installed wheel: its version says what runs)."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    commit = subprocess.run(['git', '-C', here, 'rev-parse', 'HEAD'], capture_output=True, text=True, timeout=10)
    if commit.returncode:
      return None
    dirty = subprocess.run(['git', '-C', here, 'status', '--porcelain', '--untracked-files=no', '--', '.'],
                           capture_output=True, text=True, timeout=10).stdout.strip()
  except (OSError, subprocess.TimeoutExpired):
    return None
  return commit.stdout.strip() + ('+dirty' if dirty else '')


def adapters(specs: Sequence[tuple[str, float]]) -> list[dict]:
  """The record of LoRA adapters as merged, in order: [{'file' (absolute), 'scale', 'sha256'}]."""
  return [{'file': os.path.abspath(file), 'scale': scale, 'sha256': files.sha256(file)} for file, scale in specs]


def check_adapters(recorded: Sequence[Mapping]) -> list[str]:
  """'FILE:scale' specs of recorded adapters, after checking that each file still has its recorded bytes.

  Raises:
    FileNotFoundError / ValueError: an adapter file is gone or changed (named).
  """
  for adapter in recorded:
    if not os.path.isfile(adapter['file']):
      raise FileNotFoundError(f'LoRA adapter {adapter["file"]} of the sidecar is not there any more')
    if files.sha256(adapter['file']) != adapter['sha256']:
      raise ValueError(f'LoRA adapter {adapter["file"]} changed since the file was generated (sha256 differs)')
  return [f'{adapter["file"]}:{adapter["scale"]!r}' for adapter in recorded]


def run_options(options) -> dict:
  """A sampling run's options (a dataclass) as the sidecar's 'options': everything but the prompts (the file's
  batch holds those), where it wrote and the LoRA specs (recorded by `adapters`); paths absolute."""
  record = {k: v for k, v in dataclasses.asdict(options).items()
            if k not in ('prompts', 'out', 'overwrite', 'lora', 'sampling', 'preset')}
  for key in ('checkpoint', 't5', 'rescorer', 'audio_prompt'):
    if record.get(key) is not None:
      record[key] = os.path.abspath(record[key])
  return record


def batch(requests: Sequence) -> list[dict]:
  """The requests generated together with a file (their prompts condition it): text, seed, duration, schedule and
  negative prompt of each."""
  return [{'text': r.text, 'seed': r.seed, 'duration': r.duration, 'negative': r.negative,
           'schedule': None if r.schedule is None else [list(entry) for entry in r.schedule]} for r in requests]


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
