"""A user's audio on disk -> captioned files, decoded waveforms and fixed-length segments (audiocraft conventions).

Where the files and captions come from (`find_splits`), in this order:
  a manifest given explicitly           one 'train' split
  {train,valid,test}.jsonl[.gz]          one split each (audiocraft's egs/ layout, `magnet_jax.corpus` output);
                                         an empty one is left out
  manifest.jsonl[.gz]                    one 'train' split
  no manifest                            every audio file under the folder, one 'train' split: symbolic links
                                         are followed, but each real file and folder is visited once (a link
                                         loop or a second link to the same file is skipped and counted)
A single 'train' split may then be divided (`find_splits(..., valid_fraction=, split_column=)`): by a column of
its manifest naming each file's split, or by holding out a fraction of the files as 'valid' (chosen by a hash of
the file name, so the same files are held out whatever the folder's order or size).
A manifest line is audiocraft's AudioMeta (`path`, `duration`, `sample_rate`, ...) plus caption fields
(`description`, `genre`, `moods`, `key`, `bpm`, `instrument`, `keywords`, ...); a relative `path` is relative to
the manifest's folder. As audiocraft's MusicDataset, a `<audio stem>.json` beside the file adds (or overrides)
caption fields; without a description from either, a `<audio stem>.txt` beside the file is the description.
A caption file that is not UTF-8 text (or not a JSON object) does not stop the run: its audio file is skipped and
listed with the reason, like an unreadable audio file (`AudioEntry.error`).

Audio is decoded with soundfile, resampled with soxr and mixed to the codec's channels with audiocraft's
`convert_audio_channels` rules; `segment_starts` cuts it as audiocraft's AudioDataset seeks
(`min_segment_ratio`).
"""
import dataclasses
import gzip
import json
import os
import zlib
from collections.abc import Mapping

import numpy as np
from absl import logging

from magnet_jax.audio import files
from magnet_jax.audio.convert import convert

AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aiff', '.aif')
SPLIT_MANIFESTS = ('train', 'valid', 'test')
OFFSETS = ('sequential', 'random')  # segment_starts modes
# AudioMeta fields of a manifest line: they describe the file, not the music.
_META_KEYS = frozenset({'path', 'duration', 'sample_rate', 'amplitude', 'weight', 'info_path', 'description'})
# Errors soundfile / soxr raise for missing, unreadable or corrupt files.
AUDIO_ERRORS = (OSError, RuntimeError, ValueError, EOFError)


@dataclasses.dataclass(frozen=True)
class AudioEntry:
  """One audio file and its caption."""
  path: str                 # absolute path of the audio file
  name: str                 # path relative to the input folder (record keys, logs)
  description: str          # the caption; '' when there is none (the null condition)
  attributes: Mapping       # the other caption fields (genre, moods, key, bpm, ...), as found
  error: str = ''           # why the caption files cannot be read ('' when they can): the file is skipped


def _open_text(path: str):
  return gzip.open(path, 'rt', encoding='utf-8') if path.endswith('.gz') else open(path, encoding='utf-8')


def _sidecar_fields(audio_path: str) -> dict:
  """Caption fields from `<stem>.json` (a JSON object) or, failing that, `<stem>.txt` (the description)."""
  stem = os.path.splitext(audio_path)[0]
  fields = {}
  if os.path.isfile(stem + '.json'):
    try:
      with open(stem + '.json', encoding='utf-8') as f:
        fields = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
      raise ValueError(f'{stem}.json: not a readable JSON object ({e})') from e
    if not isinstance(fields, dict):
      raise ValueError(f'{stem}.json: expected a JSON object, got {type(fields).__name__}')
  if not fields.get('description') and os.path.isfile(stem + '.txt'):
    try:
      with open(stem + '.txt', encoding='utf-8') as f:
        fields['description'] = f.read()
    except (OSError, UnicodeDecodeError) as e:
      raise ValueError(f'{stem}.txt: not a readable UTF-8 caption ({e})') from e
  return fields


def make_entry(path: str, root: str, fields: Mapping) -> AudioEntry:
  """An AudioEntry from the audio path, the input folder and caption fields (sidecar files take precedence); an
  unreadable sidecar sets `error` instead of raising, so one bad caption does not stop a whole dataset."""
  name = os.path.relpath(path, root)
  try:
    fields = {**fields, **_sidecar_fields(path)}
  except ValueError as e:
    return AudioEntry(path, name, '', {}, error=str(e))
  description = fields.get('description')
  description = description.strip() if isinstance(description, str) else ''
  attributes = {k: v for k, v in fields.items() if k not in _META_KEYS}
  return AudioEntry(path, name, description, attributes)


def read_manifest(manifest: str, root: str | None = None, allow_empty: bool = False) -> list[AudioEntry]:
  """The entries of an audiocraft-style JSONL manifest (optionally gzipped).

  Args:
    manifest: the file; relative `path`s are resolved against its folder.
    root: folder that entry names are relative to (default: the manifest's folder).
    allow_empty: return [] for a manifest without entries instead of raising.

  Raises:
    ValueError: the manifest is missing, empty, or has a line that is not a JSON object with a string `path`.
  """
  if not os.path.isfile(manifest):
    raise ValueError(f'manifest not found: {manifest}')
  folder = os.path.dirname(os.path.abspath(manifest))
  entries = []
  with _open_text(manifest) as f:
    for number, line in _numbered_lines(f, manifest):
      if not line.strip():
        continue
      try:
        fields = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f'{manifest}:{number}: not valid JSON ({e})') from e
      if not isinstance(fields, dict) or not isinstance(fields.get('path'), str) or not fields['path']:
        raise ValueError(f'{manifest}:{number}: expected a JSON object with a "path" string')
      entries.append(make_entry(os.path.join(folder, fields['path']), root or folder, fields))
  if not entries and not allow_empty:
    raise ValueError(f'{manifest}: empty manifest (no entries)')
  return entries


def _numbered_lines(f, manifest: str):
  try:
    yield from enumerate(f, 1)
  except UnicodeDecodeError as e:
    raise ValueError(f'{manifest}: not UTF-8 text ({e})') from e


def _identity(path: str):
  """What makes two paths the same file or folder (device, inode); the path itself when it cannot be stat'ed
  (a dangling link, listed later as unreadable)."""
  try:
    info = os.stat(path)
  except OSError:
    return path
  return info.st_dev, info.st_ino


def scan_folder(folder: str, skipped_links: list[str] | None = None) -> list[AudioEntry]:
  """Every audio file under `folder` (sorted), captioned by the `.json` / `.txt` files beside it.

  Symbolic links are followed, but every real folder and file is visited once: a link back into a visited folder
  (a loop) is not entered, and a file reached twice is kept under the path without links (else the first in
  sorted order).

  Args:
    folder: the input folder.
    skipped_links: when given, receives the path of every link skipped that way.

  Raises:
    ValueError: no audio file was found.
  """
  skipped = [] if skipped_links is None else skipped_links
  seen_folders, paths = {_identity(folder)}, []
  for parent, subfolders, names in os.walk(folder, followlinks=True):
    for sub in sorted(subfolders, key=lambda sub: (os.path.islink(os.path.join(parent, sub)), sub)):
      identity = _identity(os.path.join(parent, sub))
      if identity in seen_folders:
        subfolders.remove(sub)
        skipped.append(os.path.join(parent, sub))
      seen_folders.add(identity)
    paths += [os.path.join(parent, name) for name in names if name.lower().endswith(AUDIO_EXTENSIONS)]
  # A path through no link wins over one through a link; then sorted order.
  paths.sort(key=lambda path: (os.path.realpath(path) != os.path.abspath(path), path))
  seen_files, unique = set(), []
  for path in paths:
    identity = _identity(path)
    (skipped if identity in seen_files else unique).append(path)
    seen_files.add(identity)
  if skipped:
    logging.warning('%s: %d symbolic links skipped (they lead to folders or files already visited)', folder,
                    len(skipped))
  if not unique:
    raise ValueError(f'{folder}: no audio files ({", ".join(AUDIO_EXTENSIONS)}) and no manifest')
  return [make_entry(path, folder, {}) for path in sorted(unique)]


def _first_existing(folder: str, stem: str) -> str | None:
  for name in (f'{stem}.jsonl', f'{stem}.jsonl.gz'):
    if os.path.isfile(os.path.join(folder, name)):
      return os.path.join(folder, name)
  return None


def find_splits(folder: str, manifest: str | None = None, skipped_links: list[str] | None = None,
                valid_fraction: float = 0.0, split_column: str = '') -> dict[str, list[AudioEntry]]:
  """Split name -> entries for an input folder (see the module docstring for the lookup order).

  Args:
    folder: the input folder.
    manifest: a JSONL manifest to read instead of looking in `folder` (one 'train' split).
    skipped_links: receives the symbolic links skipped while scanning (`scan_folder`).
    valid_fraction: hold out this fraction (0 < f < 1) of a single train split's files as 'valid'.
    split_column: divide a single train split by this manifest field (values train / valid / test).

  Raises:
    ValueError: the folder is missing, a manifest is empty or malformed, there is no audio at all, or the split
      options do not apply (splits already given, bad fraction or column values, nothing held out).
  """
  if not os.path.isdir(folder):
    raise ValueError(f'audio folder not found: {folder}')
  splits = _found_splits(folder, manifest, skipped_links)
  if not (valid_fraction or split_column):
    return splits
  if valid_fraction and split_column:
    raise ValueError('give one of valid_fraction (--valid-fraction) and split_column (--split-column), not both')
  if set(splits) != {'train'}:
    raise ValueError(f'{folder} already has split manifests ({", ".join(sorted(splits))}); --valid-fraction / '
                     '--split-column divide a single train split')
  entries = splits['train']
  if split_column:
    divided: dict[str, list[AudioEntry]] = {}
    for entry in entries:
      split = entry.attributes.get(split_column)
      if split not in SPLIT_MANIFESTS:
        raise ValueError(f'{entry.name}: {split_column}={split!r}; expected one of {SPLIT_MANIFESTS}')
      divided.setdefault(split, []).append(entry)
  else:
    if not 0.0 < valid_fraction < 1.0:
      raise ValueError(f'valid_fraction={valid_fraction}; expected a fraction in (0, 1)')
    held = [zlib.crc32(e.name.encode()) % 10_000 < valid_fraction * 10_000 for e in entries]
    divided = {'train': [e for e, h in zip(entries, held, strict=True) if not h],
               'valid': [e for e, h in zip(entries, held, strict=True) if h]}
  for split in ('train', 'valid'):
    if not divided.get(split):
      raise ValueError(f'{folder}: dividing {len(entries)} files leaves no {split} file; change --valid-fraction '
                       'or the split column')
  return divided


def _found_splits(folder: str, manifest: str | None, skipped_links: list[str] | None) -> dict[str, list[AudioEntry]]:
  if manifest is not None:
    return {'train': read_manifest(manifest, folder)}
  split_files = {split: _first_existing(folder, split) for split in SPLIT_MANIFESTS}
  if any(split_files.values()):
    splits = {split: read_manifest(path, folder, allow_empty=True) for split, path in split_files.items() if path}
    for split in [split for split, entries in splits.items() if not entries]:
      logging.warning('%s: empty manifest, no %s split', split_files[split], split)
      del splits[split]
    if not splits:
      raise ValueError(f'{folder}: every split manifest ({", ".join(filter(None, split_files.values()))}) is empty')
    return splits
  path = _first_existing(folder, 'manifest')
  return {'train': read_manifest(path, folder) if path else scan_folder(folder, skipped_links)}


def load_audio(path: str, sample_rate: int, channels: int) -> np.ndarray:
  """Decodes a file to float32 [channels, N] at `sample_rate` (soundfile decoding, soxr resampling).

  Raises:
    One of AUDIO_ERRORS: the file is missing, unreadable, corrupt, empty or holds non-finite samples.
  """
  audio, rate = files.read(path)
  return convert(audio, rate, sample_rate, channels)


def segment_starts(num_samples: int, segment: int, min_segment_ratio: float, offsets: str = 'sequential',
                   rng: np.random.Generator | None = None) -> list[int]:
  """First samples of the segments cut from a file of `num_samples` samples.

  Args:
    num_samples: the file's length.
    segment: samples per segment.
    min_segment_ratio: a segment holds at least this fraction of `segment` real samples, unless the file itself is
      shorter (audiocraft's `min_segment_ratio`); the rest is padding.
    offsets: 'sequential': back-to-back segments from 0 while they hold enough audio; 'random': as many segments,
      each at an offset drawn uniformly in [0, num_samples - min_segment_ratio * segment] (audiocraft's seek).
    rng: the randomness of 'random'.

  Returns:
    Start samples (at least one).
  """
  shortest = max(int(min_segment_ratio * segment), 1)
  count = 1 if num_samples < shortest else (num_samples - shortest) // segment + 1
  if offsets == 'sequential':
    return [k * segment for k in range(count)]
  if offsets == 'random':
    max_seek = max(num_samples - shortest, 0)
    return sorted(int(x) for x in rng.uniform(0, max_seek, size=count))
  raise ValueError(f"segment offsets {offsets!r}; expected 'sequential' or 'random'")
