"""Audio for training and evaluating a codec: one split of the procedural corpus, rendered in memory by
`magnet_jax.corpus.make_clip` or read from a corpus folder's WAVs, and random crops of it.

Clip i of a corpus belongs to the split given by a hash of its id (`magnet_jax.corpus.split_of`), so the clips a
codec trains on ('train') and those it is scored on ('valid', 'test') are the same whichever way they are loaded.
"""
import dataclasses
import json
import os

import numpy as np
import soundfile

from magnet_jax.corpus import writer


@dataclasses.dataclass(frozen=True)
class ClipSet:
  """Clips of one split."""
  audio: tuple[np.ndarray, ...]  # float32 [N_i] mono waveforms
  groups: tuple[str, ...]        # the category of each clip, 'solo <instrument>' for solo clips
  sample_rate: int


def _group(category: str, instruments) -> str:
  return f'solo {instruments[0]}' if category == 'solo' else category


def render_split(split: str, seed: int, num_clips: int, sample_rate: int, duration: float,
                 limit: int | None = None) -> ClipSet:
  """The clips of `split` among clips 0 .. num_clips - 1 of the corpus of `seed`, rendered in memory.

  Args:
    split: 'train', 'valid' or 'test'.
    seed: corpus seed.
    num_clips: corpus size (the split holds about 90% / 5% / 5% of it).
    sample_rate: Hz.
    duration: seconds per clip.
    limit: keep only the first `limit` clips of the split.
  """
  indices = [i for i in range(num_clips) if writer.split_of(writer.clip_id(i)) == split][:limit]
  clips = [writer.make_clip(seed, i, sample_rate, duration) for i in indices]
  return ClipSet(tuple(c.audio for c in clips),
                 tuple(_group(c.arrangement.category, c.arrangement.instruments) for c in clips), sample_rate)


def read_split(corpus_dir: str, split: str, sample_rate: int, limit: int | None = None) -> ClipSet:
  """The clips listed in `<corpus_dir>/<split>.jsonl` (written by `magnet_jax.corpus.generate_corpus`).

  Raises:
    FileNotFoundError: no manifest for the split.
    ValueError: a clip's sample rate differs from `sample_rate`.
  """
  manifest = os.path.join(corpus_dir, f'{split}.jsonl')
  if not os.path.isfile(manifest):
    raise FileNotFoundError(f'no {split} manifest in the corpus folder: {manifest}')
  with open(manifest) as f:
    records = [json.loads(line) for line in f if line.strip()][:limit]
  audio, groups = [], []
  for record in records:
    path = os.path.join(corpus_dir, record['path'])
    data, rate = soundfile.read(path, dtype='float32', always_2d=True)
    if rate != sample_rate:
      raise ValueError(f'{path}: sample rate {rate}, the codec needs {sample_rate}')
    audio.append(data.mean(axis=1))
    groups.append(_group(record.get('category', ''), record.get('instruments', [''])))
  return ClipSet(tuple(audio), tuple(groups), sample_rate)


def random_crops(clips: ClipSet, rng: np.random.Generator, batch_size: int, length: int) -> np.ndarray:
  """batch_size crops of `length` samples from uniformly drawn clips -> [B, 1, length] float32.

  Clips shorter than `length` are zero-padded at the end.
  """
  batch = np.zeros((batch_size, 1, length), np.float32)
  for b, index in enumerate(rng.integers(len(clips.audio), size=batch_size)):
    audio = clips.audio[index]
    start = rng.integers(max(len(audio) - length, 0) + 1)
    crop = audio[start:start + length]
    batch[b, 0, :len(crop)] = crop
  return batch
