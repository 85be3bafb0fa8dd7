"""A folder of captioned audio -> a TFDS dataset of codec tokens (the library behind `python -m
magnet_jax.apps.prepare` and the embedded build)."""
import dataclasses
import errno

import tensorflow_datasets as tfds

from magnet_jax.codec import load_audiocraft, load_codec, load_transformers
from magnet_jax.data.audio import find_splits
from magnet_jax.data.builder import SegmentOptions, SegmentTokenizer, build
from magnet_jax.text import TextEncoder


@dataclasses.dataclass(frozen=True)
class CodecSource:
  """Which codec tokenizes the audio: exactly one of a magnet-jax codec folder, a transformers EnCodec folder, or
  audiocraft's compression_state_dict.bin (with the transformers folder a pointer checkpoint names)."""
  folder: str | None = None
  hf_folder: str | None = None
  compression_ckpt: str | None = None
  pretrained_dir: str | None = None

  def load(self):
    """(CodecConfig, params)."""
    given = [x for x in (self.folder, self.hf_folder, self.compression_ckpt) if x]
    if len(given) != 1:
      raise ValueError('give exactly one codec: --codec FOLDER, --codec-hf FOLDER or --compression-ckpt FILE')
    if self.folder:
      return load_codec(self.folder)
    if self.hf_folder:
      return load_transformers(self.hf_folder)
    return load_audiocraft(self.compression_ckpt, self.pretrained_dir)


def prepare(audio_dir: str, out: str, codec: CodecSource, segments: SegmentOptions, text: str = '',
            cache_text: bool = False, manifest: str | None = None, batch_size: int = 8,
            read_threads: int = 2, valid_fraction: float = 0.0,
            split_column: str = '') -> tuple[str, SegmentTokenizer, list[str]]:
  """Tokenizes every split found under `audio_dir` into TFDS ArrayRecord shards under `out`.

  Args:
    audio_dir: folder of audio files, manifests and caption files (`data.audio.find_splits`).
    out: output folder (the dataset goes to OUT/codec_tokens/VERSION).
    codec: the tokenizer.
    segments: segment duration, offsets, minimum ratio and seed.
    text: text encoder spec recorded in the dataset (minilm | t5:FOLDER | bert:FOLDER), '' for none.
    cache_text: also encode the captions and store the states (needs `text`).
    manifest: a JSONL manifest to read instead of looking in `audio_dir` (one train split).
    batch_size, read_threads: segments per codec call, files decoded ahead of the codec.
    valid_fraction, split_column: hold out a validation split from a single train split (`find_splits`).

  Returns:
    (the dataset folder, the tokenizer, whose `stats` count segments, files, skipped and uncaptioned files per
    split, the symbolic links skipped because they lead to folders or files already visited).

  Raises:
    ValueError / OSError / CheckpointError: bad options, a missing folder or codec, no audio.
  """
  if cache_text and not text:
    raise ValueError('--cache-text needs --text')
  links: list[str] = []
  splits = find_splits(audio_dir, manifest, links, valid_fraction, split_column)
  codec_config, params = codec.load()
  encoder = TextEncoder.from_spec(text) if text else None  # loaded now: a bad spec fails before tokenizing
  tokenizer = SegmentTokenizer(codec_config, params, segments, batch_size, encoder if cache_text else None,
                               read_threads)
  tfds.disable_progress_bar()  # the tokenizer's bar reports the progress
  try:
    folder = build(out, splits, tokenizer, text)
  except RuntimeError as e:  # TFDS reports a shard it could not finish as a RuntimeError with the system's words
    if 'No space left on device' in str(e):
      raise OSError(errno.ENOSPC, f'no space left on device writing the dataset to {out}') from e
    raise
  return folder, tokenizer, links
