"""Build a training dataset of codec tokens from a folder of audio files with captions.

  python -m magnet_jax.apps.prepare --audio DIR --out DIR (--codec FOLDER | --codec-hf FOLDER |
      --compression-ckpt FILE [--pretrained-dir FOLDER]) [--text minilm|t5:FOLDER|bert:FOLDER [--cache-text]]
      [--segment-duration 10] [--segment-offsets sequential|random] [--min-segment-ratio 0.8] [--manifest FILE]
      [--valid-fraction 0.05 | --split-column split]

then train on it with `python train.py --config=configs/small.py --config.data.source=tfds --config.data.dir=OUT`.
See magnet_jax/data/audio.py for the manifests and caption files read, magnet_jax/data/builder.py for the records.
"""
from absl import flags

from magnet_jax.apps import runner
from magnet_jax.data.audio import OFFSETS
from magnet_jax.data.builder import SegmentOptions
from magnet_jax.data.prepare import CodecSource, prepare

_AUDIO = flags.DEFINE_string('audio', None, 'Folder of audio files (and manifests / caption files).')
_OUT = flags.DEFINE_string('out', None, 'Output folder (the dataset goes to OUT/codec_tokens/VERSION).')
_MANIFEST = flags.DEFINE_string('manifest', None, 'JSONL manifest to read instead of looking in --audio (train).')
_CODEC = flags.DEFINE_string('codec', None, 'A magnet-jax codec folder (codec.json + codec.safetensors).')
_CODEC_HF = flags.DEFINE_string('codec-hf', None, 'A transformers EnCodec folder, e.g. encodec_32khz.')
_COMPRESSION_CKPT = flags.DEFINE_string('compression-ckpt', None, "audiocraft's compression_state_dict.bin.")
_PRETRAINED_DIR = flags.DEFINE_string('pretrained-dir', None,
                                      'Transformers folder of the codec a pointer --compression-ckpt names.')
_TEXT = flags.DEFINE_string('text', '', 'Text encoder for training: minilm | t5:FOLDER | bert:FOLDER (recorded in '
                            'the dataset).')
_CACHE_TEXT = flags.DEFINE_bool('cache-text', False, 'Encode the captions now and store the states (no caption '
                                'augmentation in training).')
_SEGMENT_DURATION = flags.DEFINE_float('segment-duration', 10.0, 'Seconds per segment (model T / frame rate).')
_SEGMENT_OFFSETS = flags.DEFINE_enum('segment-offsets', 'sequential', OFFSETS,
                                     'Back-to-back segments, or as many at random offsets.')
_MIN_SEGMENT_RATIO = flags.DEFINE_float('min-segment-ratio', 0.8, 'Shortest segment cut from a longer file, as a '
                                        'fraction of the segment duration.')
_VALID_FRACTION = flags.DEFINE_float('valid-fraction', 0.0, 'Hold out this fraction of a single train split as the '
                                     "'valid' split (files chosen by a hash of their name).")
_SPLIT_COLUMN = flags.DEFINE_string('split-column', '', "Divide a single train split by this manifest field "
                                    '(train / valid / test).')
_SEED = flags.DEFINE_integer('seed', 0, 'Randomness of random offsets.')
_BATCH_SIZE = flags.DEFINE_integer('batch-size', 8, 'Segments per codec call.')
_READ_THREADS = flags.DEFINE_integer('read-threads', 2, 'Files decoded ahead of the codec.')
flags.mark_flags_as_required(['audio', 'out'])


def main() -> None:
  codec = CodecSource(_CODEC.value, _CODEC_HF.value, _COMPRESSION_CKPT.value, _PRETRAINED_DIR.value)
  segments = SegmentOptions(_SEGMENT_DURATION.value, _SEGMENT_OFFSETS.value, _MIN_SEGMENT_RATIO.value, _SEED.value)
  folder, tokenizer, links = prepare(_AUDIO.value, _OUT.value, codec, segments, _TEXT.value, _CACHE_TEXT.value,
                                     _MANIFEST.value, _BATCH_SIZE.value, _READ_THREADS.value,
                                     _VALID_FRACTION.value, _SPLIT_COLUMN.value)
  if links:
    print(f'{len(links)} symbolic links skipped (they lead to folders or files already visited), e.g. {links[0]}')
  for split, stats in tokenizer.stats.items():
    print(f'{split}: {stats["segments"]} segments of {tokenizer.frames} frames from {stats["files"]} files, '
          f'{len(stats["skipped"])} skipped, {stats["uncaptioned"]} without a caption (unconditional examples)')
    for name, reason in stats['skipped']:
      print(f'  skipped {name}: {reason}')
  print(f'wrote {folder}')


if __name__ == '__main__':
  runner.run('python -m magnet_jax.apps.prepare', main)
