"""The dataset of codec tokens: captioned audio files -> fixed-length segments of codec tokens, as a TFDS dataset
stored in ArrayRecord shards (`CodecTokens`, built by `build`).

One record per segment:
  codes        int16 [K, T] (int32 when bins > 32767)  codec tokens of the segment, padding frames included
  num_frames   int32             frames of real audio, floor(samples / hop_length) as audiocraft's
                                 `padding_with_special_token`; frames from num_frames on are padding
  description  text              the caption ('' = none, the null condition)
  attributes   text              JSON of the file's other caption fields (genre, moods, key, bpm, ...)
  path         text              the source file, relative to the input folder
  start        float32           the segment's start in the source file (s)
  text_states  float16 [S_i, Dt] only when captions are encoded at build time: the text encoder's states of the
                                 caption's S_i tokens (none for an empty caption)
`info.metadata` records the codec (sample_rate, channels, n_q, bins, frame_rate, hop_length), the segmenting, the
text encoder and per split the files and segments written and the files skipped.

Tokenization runs the Flax codec jitted on fixed-shape batches [B, C, N] (one compilation) while threads decode
the next files; a tqdm bar reports seconds of source audio tokenized per second.
"""
import collections
import dataclasses
import itertools
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
import soundfile
import tensorflow_datasets as tfds
from absl import logging
from tqdm import tqdm

from magnet_jax.codec import CodecConfig, Params, encode
from magnet_jax.data.audio import AUDIO_ERRORS, OFFSETS, AudioEntry, load_audio, segment_starts
from magnet_jax.text import TextEncoder

NAME = 'codec_tokens'
_TEXT_BUCKET = 16  # caption token counts are rounded up to this (fewer text-encoder compilations)


@dataclasses.dataclass(frozen=True)
class SegmentOptions:
  """How files are cut into segments (audiocraft's dataset.segment_duration / min_segment_ratio)."""
  duration: float = 10.0          # seconds per segment: the LM's segment_duration.
  offsets: str = 'sequential'     # sequential | random (magnet_jax.data.audio.segment_starts).
  min_segment_ratio: float = 0.8  # shortest segment of a longer file, as a fraction of duration (musicgen: 0.8).
  seed: int = 0                   # randomness of random offsets.


@dataclasses.dataclass(frozen=True)
class _Piece:
  entry: AudioEntry
  start: int             # first sample in the (resampled) file
  audio: np.ndarray      # float32 [C, n], n <= segment samples
  seconds_done: float    # source seconds completed with this piece (the file's duration on its last piece)


def _prefetch(fn: Callable, items: Iterable, depth: int) -> Iterator[tuple]:
  """(item, fn(item)) in order, with up to `depth` calls running ahead in threads."""
  with ThreadPoolExecutor(max(depth, 1)) as pool:
    pending = collections.deque()
    for item in items:
      pending.append((item, pool.submit(fn, item)))
      if len(pending) > depth:
        item, future = pending.popleft()
        yield item, future.result()
    for item, future in pending:
      yield item, future.result()


def _batched(items: Iterable, size: int) -> Iterator[list]:
  iterator = iter(items)
  while batch := list(itertools.islice(iterator, size)):
    yield batch


def _duration(entry: AudioEntry) -> float:
  try:
    return soundfile.info(entry.path).duration
  except AUDIO_ERRORS:
    return 0.0


class SegmentTokenizer:
  """Audio entries -> (key, record) of every segment: decoding, segmenting, batched codec (and text) encoding.

  Args:
    codec: the codec's architecture.
    params: its parameters.
    segments: the segmenting.
    batch_size: segments per codec call.
    text: when given, captions are encoded now and their states stored (`text_states`).
    read_threads: files decoded ahead of the codec.

  Attributes:
    segment_samples: N, samples per segment at the codec's rate.
    frames: T, codec frames per segment.
    stats: per split, files and segments written, files skipped (name, reason) and files written without a
      caption (`uncaptioned`: unconditional examples), filled while tokenizing.

  Raises:
    ValueError: the segment is not a positive whole number of codec frames, or a bad option.
  """

  def __init__(self, codec: CodecConfig, params: Params, segments: SegmentOptions, batch_size: int = 8,
               text: TextEncoder | None = None, read_threads: int = 2):
    exact = segments.duration * codec.sample_rate
    self.segment_samples = round(exact)
    if segments.duration <= 0 or abs(exact - self.segment_samples) > 1e-6 or self.segment_samples % codec.hop_length:
      raise ValueError(f'segment duration {segments.duration}s is not a positive whole number of codec frames '
                       f'({codec.hop_length} samples at {codec.sample_rate} Hz)')
    if not 0.0 <= segments.min_segment_ratio <= 1.0 or batch_size < 1 or segments.offsets not in OFFSETS:
      raise ValueError(f'need 0 <= min_segment_ratio <= 1, batch_size >= 1 and offsets in {OFFSETS}; got '
                       f'{segments.min_segment_ratio}, {batch_size}, {segments.offsets!r}')
    self.codec, self.segments, self.batch_size, self.text = codec, segments, batch_size, text
    self.read_threads = read_threads
    self.params = jax.device_put(params)
    self.frames = self.segment_samples // codec.hop_length
    self.codes_dtype = np.int16 if codec.bins <= np.iinfo(np.int16).max + 1 else np.int32
    self.stats: dict[str, dict] = {}

  def _load(self, entry: AudioEntry) -> np.ndarray | str:
    """The file's audio [C, N], or the reason it cannot be read (its audio or its caption files)."""
    if entry.error:
      return entry.error
    try:
      return load_audio(entry.path, self.codec.sample_rate, self.codec.channels)
    except AUDIO_ERRORS as e:
      return f'{type(e).__name__}: {e}'

  def _pieces(self, entries: Sequence[AudioEntry], stats: dict, progress: tqdm) -> Iterator[_Piece]:
    for entry, audio in _prefetch(self._load, entries, self.read_threads):
      if isinstance(audio, str):
        stats['skipped'].append((entry.name, audio))
        logging.warning('skipping %s: %s', entry.path, audio)
        progress.total -= _duration(entry)
        continue
      stats['files'] += 1
      stats['uncaptioned'] += not entry.description
      rng = np.random.default_rng([self.segments.seed, zlib.crc32(entry.name.encode())])
      starts = segment_starts(audio.shape[1], self.segment_samples, self.segments.min_segment_ratio,
                              self.segments.offsets, rng)
      for i, start in enumerate(starts):
        seconds = audio.shape[1] / self.codec.sample_rate if i == len(starts) - 1 else 0.0
        yield _Piece(entry, start, audio[:, start:start + self.segment_samples], seconds)

  def _text_states(self, texts: list[str]) -> list[np.ndarray]:
    """float16 [S_i, Dt] per caption (its tokens' states)."""
    padded = texts + [''] * (self.batch_size - len(texts))  # one batch shape for the encoder
    states, mask = self.text.encode(padded, pad_to=_TEXT_BUCKET)
    states = np.asarray(states, np.float16)[:len(texts)]
    lengths = np.asarray(mask)[:len(texts)].sum(axis=1)
    return [s[:n] for s, n in zip(states, lengths, strict=True)]

  def _records(self, group: list[_Piece], codes: jax.Array) -> Iterator[tuple[str, dict]]:
    codes = np.asarray(codes)[:len(group)].astype(self.codes_dtype)
    states = self._text_states([p.entry.description for p in group]) if self.text else None
    for i, piece in enumerate(group):
      record = {'codes': codes[i], 'num_frames': piece.audio.shape[1] // self.codec.hop_length,
                'description': piece.entry.description,
                'attributes': json.dumps(dict(piece.entry.attributes), sort_keys=True),
                'path': piece.entry.name, 'start': piece.start / self.codec.sample_rate}
      if states is not None:
        record['text_states'] = states[i]
      yield f'{piece.entry.name}@{piece.start}', record

  def examples(self, entries: Sequence[AudioEntry], split: str) -> Iterator[tuple[str, dict]]:
    """(unique key, record) of every segment of `entries`; unreadable files are skipped, logged and counted.

    Raises:
      ValueError: not a single file of the split could be read.
    """
    stats = self.stats[split] = {'files': 0, 'segments': 0, 'skipped': [], 'uncaptioned': 0}
    with ThreadPoolExecutor(max(self.read_threads, 1)) as pool:
      total = sum(pool.map(_duration, entries))
    c = self.codec
    progress = tqdm(total=total, desc=f'tokenize {split}', unit='s', unit_scale=True, dynamic_ncols=True)
    pending = None
    for group in _batched(self._pieces(entries, stats, progress), self.batch_size):
      audio = np.zeros((self.batch_size, c.channels, self.segment_samples), np.float32)
      for i, piece in enumerate(group):
        audio[i, :, :piece.audio.shape[1]] = piece.audio
      codes = encode(self.params, audio, c)  # asynchronous: the previous batch is written while this one runs
      if pending is not None:
        yield from self._finish(*pending, stats, progress)
      pending = group, codes
    if pending is not None:
      yield from self._finish(*pending, stats, progress)
    progress.close()
    logging.info('%s: %d segments from %d files, %d files skipped', split, stats['segments'], stats['files'],
                 len(stats['skipped']))
    if not stats['segments']:
      raise ValueError(f'split {split}: none of its {len(entries)} audio files could be read')

  def _finish(self, group: list[_Piece], codes: jax.Array, stats: dict, progress: tqdm):
    yield from self._records(group, codes)
    stats['segments'] += len(group)
    progress.update(sum(p.seconds_done for p in group))
    progress.set_postfix(files=stats['files'], segments=stats['segments'], skipped=len(stats['skipped']))


class CodecTokens(tfds.core.GeneratorBasedBuilder):
  """TFDS builder of codec-token segments (see the module docstring); read back with `tfds.builder_from_directory`
  (no codec needed).

  Args:
    splits: split name -> the files to tokenize.
    tokenizer: the segmenting and encoding.
    text_encoder: spec of the text encoder training should use ('minilm', 't5:FOLDER', ...; '' = none recorded);
      the one that made `text_states` when the tokenizer encodes text.
    **kwargs: tfds.core.GeneratorBasedBuilder's (data_dir, file_format, ...).
  """
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Codec tokens of fixed-length segments with captions.'}

  def __init__(self, *, splits: Mapping[str, Sequence[AudioEntry]], tokenizer: SegmentTokenizer,
               text_encoder: str = '', **kwargs):
    self._splits, self._tokenizer, self._text_encoder = splits, tokenizer, text_encoder
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    t, c = self._tokenizer, self._tokenizer.codec
    features = {
        'codes': tfds.features.Tensor(shape=(c.n_q, t.frames), dtype=t.codes_dtype,
                                      encoding=tfds.features.Encoding.BYTES),
        'num_frames': np.int32, 'description': tfds.features.Text(), 'attributes': tfds.features.Text(),
        'path': tfds.features.Text(), 'start': np.float32}
    if t.text is not None:
      features['text_states'] = tfds.features.Tensor(shape=(None, t.text.dim), dtype=np.float16,
                                                     encoding=tfds.features.Encoding.BYTES)
    metadata = tfds.core.MetadataDict(
        codec={'sample_rate': c.sample_rate, 'channels': c.channels, 'n_q': c.n_q, 'bins': c.bins,
               'frame_rate': c.frame_rate, 'hop_length': c.hop_length},
        segment={**dataclasses.asdict(t.segments), 'frames': t.frames, 'samples': t.segment_samples},
        text={'encoder': self._text_encoder, 'cached': t.text is not None, 'dim': t.text.dim if t.text else 0},
        stats=t.stats)
    return tfds.core.DatasetInfo(builder=self, description=__doc__, features=tfds.features.FeaturesDict(features),
                                 metadata=metadata)

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    return {split: self._generate_examples(split) for split in self._splits}

  def _generate_examples(self, split: str):
    yield from self._tokenizer.examples(self._splits[split], split)


def build(out_dir: str, splits: Mapping[str, Sequence[AudioEntry]], tokenizer: SegmentTokenizer,
          text_encoder: str = '') -> str:
  """Tokenizes `splits` into a new dataset under `out_dir`; returns the dataset's folder.

  Raises:
    FileExistsError: out_dir already holds this dataset.
    ValueError: a split has no readable audio.
  """
  builder = CodecTokens(splits=splits, tokenizer=tokenizer, text_encoder=text_encoder, data_dir=out_dir,
                        file_format='array_record')
  if os.path.isdir(builder.data_dir):
    raise FileExistsError(f'{builder.data_dir} already holds a dataset; remove it or choose another output folder')
  builder.download_and_prepare()
  return os.fspath(builder.data_dir)
