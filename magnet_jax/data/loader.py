"""Training batches from a codec-token dataset (`magnet_jax.data.builder`): a grain pipeline with a seeded global
shuffle, per-process sharding, batching, worker prefetch and a checkpointable position.

The sampler's sequence is one shuffle of all records, a new permutation every epoch; process p of P reads its
positions p, p + P, p + 2P, ... (grain ShardOptions on the DataLoader), so every epoch's records are split
between processes exactly once, and with 0 workers the P local batches of a step hold the records one process
would batch alone (records are still read ahead by grain's thread pool; worker processes only parallelise the
per-record transforms). Caption augmentation draws from each record's sampler-position generator, so it is also
fixed by the seed. The position (`get_state`) is grain's DataLoader state with this process's offset removed: the
same on every process, so the one copy orbax saves (process 0's) restores all of them, and without workers it
also restores a run on another process count.

Text: when the dataset holds `text_states` they are padded (or cut) to `caption_len` tokens in the workers;
otherwise the workers carry the (augmented) caption and this process encodes each batch's captions with the
jitted text encoder.
"""
import dataclasses
import glob
import json
import os

import grain
import numpy as np
import tensorflow_datasets as tfds
from absl import flags, logging

from magnet_jax.data.builder import NAME
from magnet_jax.data.captions import CaptionAugmentation
from magnet_jax.models.config import MagnetConfig
from magnet_jax.text import TextEncoder


@dataclasses.dataclass(frozen=True)
class _AugmentCaption(grain.transforms.RandomMap):
  """A stored record -> the same record with its caption augmented (the record's own random generator)."""
  augmentation: CaptionAugmentation

  def random_map(self, record: dict, rng: np.random.Generator) -> dict:
    description = self.augmentation(record['description'].decode(), json.loads(record['attributes']), rng)
    return {**record, 'description': description.encode()}


@dataclasses.dataclass(frozen=True)
class _ToExample(grain.transforms.Map):
  """A stored record -> a training example: 'codes' int32 [K, T], 'padding_mask' bool [T], and either 'cond'
  float32 [S, Dt] + 'cond_mask' bool [S] (stored text states, S = caption_len) or 'description' bytes."""
  caption_len: int
  text_dim: int   # Dt of stored text states; 0 when the dataset stores captions only

  def map(self, record: dict) -> dict:
    codes = record['codes'].astype(np.int32)
    example = {'codes': codes, 'padding_mask': np.arange(codes.shape[1]) < record['num_frames']}
    if self.text_dim:
      states = record['text_states'][:self.caption_len]
      example['cond'] = np.zeros((self.caption_len, self.text_dim), np.float32)
      example['cond'][:len(states)] = states
      example['cond_mask'] = np.arange(self.caption_len) < len(states)
    else:
      example['description'] = record['description']
    return example


class TokenSource:
  """This process's training batches from a codec-token split, endlessly, with a checkpointable position.

  Each batch: 'codes' int32 [b, K, T], 'cond' float32 [b, S, Dt], 'cond_mask' bool [b, S], 'padding_mask'
  bool [b, T] with b = batch_size / process_count and S = caption_len. The global batches are fixed by
  (seed, batch_size) without workers, and also by the process and worker counts with workers.

  Args:
    records: a random-access source of stored records (`builder.as_data_source(split)`).
    batch_size: the global batch (all processes).
    process_index: which of the process_count parts of every global batch this process yields.
    process_count: processes in the job.
    seed: the shuffle's (and caption augmentation's) seed.
    caption_len: S, text tokens per example.
    text_dim: Dt of the stored text states; 0 when the records hold captions only.
    text_encoder: encodes the captions of each batch; required exactly when text_dim is 0.
    augmentation: caption augmentation (captions only); None = none.
    worker_count: grain worker processes (0: load in this process).
    worker_buffer_size: batches each worker prepares ahead.

  Raises:
    ValueError: inconsistent arguments.
  """

  def __init__(self, records, batch_size: int, process_index: int = 0, process_count: int = 1, *, seed: int = 0,
               caption_len: int = 64, text_dim: int = 0, text_encoder: TextEncoder | None = None,
               augmentation: CaptionAugmentation | None = None, worker_count: int = 0,
               worker_buffer_size: int = 2):
    if batch_size % process_count or not 0 <= process_index < process_count:
      raise ValueError(f'batch size {batch_size} must split evenly over {process_count} processes and process '
                       f'index {process_index} be one of them')
    if (text_encoder is None) == (text_dim == 0):
      raise ValueError('pass text_dim for records with text states, or a text encoder for records with captions')
    augmentation = augmentation or CaptionAugmentation()
    if augmentation.enabled and text_dim:
      raise ValueError('caption augmentation needs captions, but this dataset stores encoded text states '
                       '(rebuild it without --cache-text, or set the augmentation probabilities to 0)')
    if caption_len < 1:
      raise ValueError(f'caption_len must be >= 1, got {caption_len}')
    self._process_index, self._process_count = process_index, process_count
    self._text, self._caption_len = text_encoder, caption_len
    self._truncated_warned = False
    if worker_count and not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()  # grain's workers read its absl flags (defaults outside an absl app)
    sampler = grain.samplers.IndexSampler(len(records), shuffle=True, seed=seed, num_epochs=None)
    operations = [_AugmentCaption(augmentation)] if augmentation.enabled else []
    operations += [_ToExample(caption_len, text_dim),
                   grain.transforms.Batch(batch_size // process_count, drop_remainder=True)]
    loader = grain.DataLoader(
        data_source=records, sampler=sampler, operations=operations, worker_count=worker_count,
        worker_buffer_size=worker_buffer_size,
        shard_options=grain.sharding.ShardOptions(process_index, process_count, drop_remainder=True))
    self._iterator = iter(loader)

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._iterator)
    if self._text is not None:
      batch['cond'], batch['cond_mask'] = self._encode([d.decode() for d in batch.pop('description')])
    return batch

  def _encode(self, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """States float32 [b, S, Dt] and mask bool [b, S] of the captions, padded or cut to S = caption_len."""
    states, mask = self._text.encode(captions, pad_to=self._caption_len)
    if states.shape[1] > self._caption_len and not self._truncated_warned:
      self._truncated_warned = True
      logging.warning('captions of %d tokens are cut to data.caption_len=%d (warned once)', states.shape[1],
                      self._caption_len)
    return np.asarray(states[:, :self._caption_len], np.float32), np.asarray(mask[:, :self._caption_len])

  def get_state(self) -> dict:
    """The position, JSON-able and the same on every process."""
    state = json.loads(self._iterator.get_state())
    state['last_seen_indices'] = {w: i - self._process_index for w, i in state['last_seen_indices'].items()}
    return {'grain': state, 'process_count': self._process_count}

  def set_state(self, state: dict) -> None:
    """Continues from a `get_state()` of any process of a run with the same seed, batch size and worker count;
    without workers, also of a run with another process count (its global position carries over).

    Raises:
      ValueError: the state is not a tfds-source position, or comes from another worker count, sampler or split,
        or from another process count with workers.
    """
    if not isinstance(state, dict) or 'grain' not in state:
      raise ValueError(f'the checkpoint\'s data position is not a tfds-source position: {state}')
    grain_state, saved_count = dict(state['grain']), state['process_count']
    if saved_count != self._process_count:
      if grain_state['worker_count']:
        raise ValueError(f'the checkpoint was written by {saved_count} processes with data.worker_count='
                         f'{grain_state["worker_count"]}, this run has {self._process_count}; resume on the same '
                         'process count (only worker_count=0 positions carry over to another)')
      consumed = grain_state['last_seen_indices']['0'] + saved_count  # records read by all processes together
      grain_state['last_seen_indices'] = {'0': consumed - self._process_count}
    grain_state['last_seen_indices'] = {w: i + self._process_index
                                        for w, i in grain_state['last_seen_indices'].items()}
    self._iterator.set_state(json.dumps(grain_state).encode())


def find_dataset(data_dir: str) -> str:
  """The dataset folder in `data_dir`: data_dir itself, or the newest version under data_dir/codec_tokens/.

  Raises:
    FileNotFoundError: data_dir is empty, missing, or holds no codec-token dataset.
  """
  if not data_dir:
    raise FileNotFoundError('config.data.dir is empty: point it at a dataset built by python -m '
                            'magnet_jax.apps.prepare')
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f'data dir not found: {data_dir}')
  if os.path.isfile(os.path.join(data_dir, 'dataset_info.json')):
    return data_dir
  versions = [os.path.dirname(p) for p in glob.glob(os.path.join(data_dir, NAME, '*', 'dataset_info.json'))]
  if not versions:
    raise FileNotFoundError(f'{data_dir} holds no codec-token dataset; build one with python -m '
                            f'magnet_jax.apps.prepare --audio AUDIO_DIR --out {data_dir} ...')
  return max(versions, key=lambda path: tfds.core.Version(os.path.basename(path)))


def check_dataset_matches(metadata: dict, model: MagnetConfig, length: int, sample_rate: int = 0) -> None:
  """Raises one ValueError listing every way the dataset's codec and segments disagree with the model config.

  Args:
    metadata: the dataset's `info.metadata`.
    model: the LM config.
    length: T the trainer expects.
    sample_rate: the codec sample rate the config expects; 0 = any.
  """
  codec, frames = metadata['codec'], metadata['segment']['frames']
  problems = [f'{what}: dataset {have}, config {want}' for what, have, want in (
      ('codebooks (model.n_q)', codec['n_q'], model.n_q), ('codebook size (model.card)', codec['bins'], model.card),
      ('frame rate (model.frame_rate)', codec['frame_rate'], model.frame_rate),
      ('frames per segment (data.length or model.segment_duration * frame_rate)', frames, length),
      ('sample rate (data.sample_rate)', codec['sample_rate'], sample_rate or codec['sample_rate'])) if have != want]
  if problems:
    raise ValueError('the dataset does not fit the config: ' + '; '.join(problems) +
                     ' (rebuild it with a matching codec and --segment-duration, or change the config)')


def _open_split(config, model: MagnetConfig, split: str):
  """(records of `split`, text_dim, text_encoder) of config.data.dir's dataset, checked against the model.

  text_dim is the stored states' width (text_encoder None), or 0 with the encoder for stored captions.
  """
  data = config.data
  builder = tfds.builder_from_directory(find_dataset(data.dir))
  metadata = builder.info.metadata
  check_dataset_matches(metadata, model, data.length or model.sequence_length, data.sample_rate)
  if split not in builder.info.splits:
    raise ValueError(f'split {split!r} (data.split / eval.split): the dataset has {sorted(builder.info.splits)}')
  text = metadata['text']
  if text['cached']:
    if data.text_encoder and data.text_encoder != text['encoder']:
      raise ValueError(f'data.text_encoder={data.text_encoder!r}, but the dataset stores text states of '
                       f'{text["encoder"]!r}; rebuild it without --cache-text to use another encoder')
    spec, text_encoder, text_dim = text['encoder'], None, text['dim']
  else:
    spec = data.text_encoder or text['encoder']
    if not spec:
      raise ValueError('the dataset names no text encoder: set data.text_encoder (minilm | t5:FOLDER | bert:FOLDER)')
    text_encoder, text_dim = TextEncoder.from_spec(spec), 0
  if (text_dim or text_encoder.dim) != model.text_dim:
    raise ValueError(f'the text encoder {spec!r} gives {text_dim or text_encoder.dim}-d states, model.text_dim is '
                     f'{model.text_dim}')
  return builder.as_data_source(split), text_dim, text_encoder


def text_encoder_spec(config) -> str:
  """The text encoder of config.data.dir's dataset (data.text_encoder when set)."""
  metadata = tfds.builder_from_directory(find_dataset(config.data.dir)).info.metadata
  return config.data.text_encoder or metadata['text']['encoder']


def read_examples(config, model: MagnetConfig, split: str, limit: int) -> dict[str, np.ndarray]:
  """The first `limit` records of `split`, in order and without caption augmentation (a fixed evaluation set):
  'codes' int32 [E, K, T], 'padding_mask' bool [E, T], 'cond' float32 [E, S, Dt], 'cond_mask' bool [E, S].

  Raises:
    FileNotFoundError / ValueError: as `make_tfds_source`, or an empty split.
  """
  records, text_dim, text_encoder = _open_split(config, model, split)
  if not len(records):
    raise ValueError(f'split {split!r} of {config.data.dir} is empty')
  to_example = _ToExample(config.data.caption_len, text_dim)
  examples = [to_example.map(records[i]) for i in range(min(limit, len(records)))]
  batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
  if text_encoder is not None:
    states, mask = text_encoder.encode([d.decode() for d in batch.pop('description')], pad_to=config.data.caption_len)
    batch['cond'] = np.asarray(states[:, :config.data.caption_len], np.float32)
    batch['cond_mask'] = np.asarray(mask[:, :config.data.caption_len])
  return batch


def make_tfds_source(config, model: MagnetConfig, process_index: int, process_count: int) -> TokenSource:
  """The `data.source = 'tfds'` source of `config` (see configs/base.py), checked against the model first.

  Raises:
    FileNotFoundError: no dataset at data.dir.
    ValueError: the dataset or its text does not fit the config, or a bad data option.
  """
  data = config.data
  records, text_dim, text_encoder = _open_split(config, model, data.split)
  augmentation = CaptionAugmentation(data.merge_text_p, data.drop_desc_p, data.drop_other_p, data.word_dropout,
                                     tuple(data.merge_fields))
  return TokenSource(
      records, config.train.batch_size, process_index, process_count,
      seed=data.shuffle_seed, caption_len=data.caption_len, text_dim=text_dim, text_encoder=text_encoder,
      augmentation=augmentation, worker_count=data.worker_count, worker_buffer_size=data.worker_buffer_size)
