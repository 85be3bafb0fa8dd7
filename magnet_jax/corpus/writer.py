"""The corpus on disk: WAV files, a JSONL manifest per split, all written atomically.

  out_dir/audio/<id>.wav       mono 16-bit PCM (libsndfile stamps float WAVs with the time, breaking determinism)
  out_dir/manifest.jsonl       every clip, one JSON object per line, in id order
  out_dir/{train,valid,test}.jsonl   the same lines, split by id

Each line follows audiocraft's AudioMeta (`path`, `duration`, `sample_rate`) with the MusicInfo-style caption in
`description` and the structured attributes beside it: `id`, `split`, `category`, `instruments`, `drums`, `bpm`,
`key`, `mode`, `tempo`. `path` is relative to out_dir, so a corpus can be moved and two corpora with the same seed
are byte-identical. Clip `i` depends only on (seed, i): more clips extend a corpus without changing the first ones.
"""
import concurrent.futures
import contextlib
import dataclasses
import functools
import io
import json
import multiprocessing
import os
import pathlib
import zlib

import numpy as np
import soundfile
import tqdm

from magnet_jax.audio.stats import audio_stats
from magnet_jax.corpus import captions, compose, render
from magnet_jax.io.files import atomic_write

SPLITS = ('train', 'valid', 'test')
_HELD_OUT_PERCENT = 5  # of the clips in each of valid and test


@dataclasses.dataclass(frozen=True)
class Clip:
  """One rendered clip."""
  audio: np.ndarray                 # float32 [N], N = round(duration * sample_rate)
  arrangement: compose.Arrangement
  description: str                  # the caption


def make_clip(seed: int, index: int, sample_rate: int = 16000, duration: float = 5.0,
              category: str | None = None, instrument: str | None = None) -> Clip:
  """Clip `index` of the corpus of `seed` (category and solo/duo instrument may be forced, as in tests)."""
  rng = np.random.default_rng([seed, index])
  arrangement = compose.draw_arrangement(rng, category, instrument)
  parts = compose.compose(arrangement, duration, rng)
  audio = render.mix(parts, int(round(duration * sample_rate)), sample_rate, rng)
  return Clip(audio, arrangement, captions.describe(arrangement, rng))


def clip_id(index: int) -> str:
  return f'clip_{index:06d}'


def split_of(name: str) -> str:
  """'train', 'valid' or 'test', from a hash of the id (independent of the seed and the corpus size)."""
  bucket = zlib.crc32(name.encode()) % 100
  return 'test' if bucket < _HELD_OUT_PERCENT else 'valid' if bucket < 2 * _HELD_OUT_PERCENT else 'train'


def _wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
  buffer = io.BytesIO()
  soundfile.write(buffer, audio, sample_rate, format='WAV', subtype='PCM_16')
  return buffer.getvalue()


def _write_clip(out_dir: str, seed: int, index: int, sample_rate: int, duration: float,
                category: str | None = None) -> dict:
  """Renders and writes clip `index`; returns its manifest record."""
  clip = make_clip(seed, index, sample_rate, duration, category)
  name = clip_id(index)
  path = os.path.join('audio', f'{name}.wav')
  data = _wav_bytes(clip.audio, sample_rate)
  atomic_write(os.path.join(out_dir, path), lambda tmp: pathlib.Path(tmp).write_bytes(data))
  a = clip.arrangement
  return {'path': path, 'duration': len(clip.audio) / sample_rate, 'sample_rate': sample_rate,
          'description': clip.description, 'id': name, 'split': split_of(name), 'category': a.category,
          'instruments': list(a.instruments), 'drums': a.drums, 'bpm': a.bpm, 'key': a.key, 'mode': a.mode,
          'tempo': captions.tempo_class(a.bpm)}


def _write_jsonl(path: str, records: list[dict]) -> None:
  text = ''.join(json.dumps(r) + '\n' for r in records)
  atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(text, encoding='utf-8'))


def generate_corpus(out_dir: str, num_clips: int, seed: int, sample_rate: int = 16000, duration: float = 5.0,
                    num_workers: int = 1, progress: bool = True, category: str | None = None) -> list[dict]:
  """Renders clips 0 .. num_clips - 1 of `seed` into out_dir (see the module docstring); returns the records.

  num_workers > 1 renders in that many processes; the files are the same either way. `category` forces every
  clip's category, e.g. one of `compose.EXTRA_CATEGORIES` (a style the default corpus lacks, to fine-tune on).
  """
  if category is not None and category not in compose.CATEGORIES + compose.EXTRA_CATEGORIES:
    raise ValueError(f'category={category!r}; expected one of {compose.CATEGORIES + compose.EXTRA_CATEGORIES}')
  if num_clips < 1 or duration <= 0 or sample_rate < 8000:
    raise ValueError(f'need num_clips >= 1, duration > 0, sample_rate >= 8000; got {num_clips}, {duration}, '
                     f'{sample_rate}')
  os.makedirs(os.path.join(out_dir, 'audio'), exist_ok=True)
  columns = ([out_dir] * num_clips, [seed] * num_clips, range(num_clips), [sample_rate] * num_clips,
             [duration] * num_clips, [category] * num_clips)
  with contextlib.ExitStack() as stack:
    mapper = map
    if num_workers > 1:
      # 'spawn': forking a process that has imported JAX (multithreaded) can deadlock
      pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
          num_workers, mp_context=multiprocessing.get_context('spawn')))
      mapper = functools.partial(pool.map, chunksize=4)
    records = list(tqdm.tqdm(mapper(_write_clip, *columns), total=num_clips, desc='corpus', unit='clip',
                             disable=not progress))
  for split in SPLITS:
    _write_jsonl(os.path.join(out_dir, f'{split}.jsonl'), [r for r in records if r['split'] == split])
  _write_jsonl(os.path.join(out_dir, 'manifest.jsonl'), records)
  return records


def summarize(manifest_path: str) -> dict[str, dict[str, tuple[float, float, float]]]:
  """Per group, each statistic's (min, median, max) over the manifest's clips.

  Groups are the categories, and 'solo <instrument>' for each solo instrument.
  """
  root = os.path.dirname(manifest_path)
  values: dict[str, dict[str, list[float]]] = {}
  with open(manifest_path) as f:
    for line in f:
      record = json.loads(line)
      audio, sample_rate = soundfile.read(os.path.join(root, record['path']), dtype='float32')
      groups = [record['category']]
      if record['category'] == 'solo':
        groups.append(f'solo {record["instruments"][0]}')
      for name, value in audio_stats(audio, sample_rate).items():
        for group in groups:
          values.setdefault(group, {}).setdefault(name, []).append(value)
  return {group: {name: (float(np.min(v)), float(np.median(v)), float(np.max(v))) for name, v in stats.items()}
          for group, stats in sorted(values.items())}
