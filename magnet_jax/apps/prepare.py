"""Build a training dataset of codec tokens from a folder of audio files with captions.

  python -m magnet_jax.apps.prepare --audio DIR --out DIR (--codec FOLDER | --codec-hf FOLDER |
      --compression-ckpt FILE [--pretrained-dir FOLDER]) [--text minilm|t5:FOLDER|bert:FOLDER [--cache-text]]
      [--segment-duration 10] [--segment-offsets sequential|random] [--min-segment-ratio 0.8] [--manifest FILE]

then train on it with `python train.py --config=configs/small.py --config.data.source=tfds --config.data.dir=OUT`.
See magnet_jax/data/audio.py for the manifests and caption files read, magnet_jax/data/builder.py for the records.
"""
import argparse
import sys

import tensorflow_datasets as tfds

from magnet_jax.codec import load_audiocraft, load_codec, load_transformers
from magnet_jax.data.audio import OFFSETS, find_splits
from magnet_jax.data.builder import SegmentOptions, SegmentTokenizer, build
from magnet_jax.text import TextEncoder


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog='python -m magnet_jax.apps.prepare', description=__doc__.split('\n')[0])
  parser.add_argument('--audio', required=True, help='folder of audio files (and manifests / caption files)')
  parser.add_argument('--out', required=True, help='output folder (the dataset goes to OUT/codec_tokens/VERSION)')
  parser.add_argument('--manifest', help='JSONL manifest to read instead of looking in --audio (a train split)')
  codec = parser.add_mutually_exclusive_group(required=True)
  codec.add_argument('--codec', metavar='FOLDER', help='a magnet-jax codec folder (codec.json + codec.safetensors)')
  codec.add_argument('--codec-hf', metavar='FOLDER', help='a transformers EnCodec folder, e.g. encodec_32khz')
  codec.add_argument('--compression-ckpt', metavar='FILE', help="audiocraft's compression_state_dict.bin")
  parser.add_argument('--pretrained-dir', metavar='FOLDER',
                      help='transformers folder of the codec a pointer --compression-ckpt names')
  parser.add_argument('--text', default='', metavar='SPEC',
                      help='text encoder for training: minilm | t5:FOLDER | bert:FOLDER (recorded in the dataset)')
  parser.add_argument('--cache-text', action='store_true',
                      help='encode the captions now and store the states (no caption augmentation in training)')
  parser.add_argument('--segment-duration', type=float, default=10.0, help='seconds per segment (model T / rate)')
  parser.add_argument('--segment-offsets', choices=OFFSETS, default='sequential',
                      help='back-to-back segments, or as many at random offsets')
  parser.add_argument('--min-segment-ratio', type=float, default=0.8,
                      help='shortest segment cut from a longer file, as a fraction of the segment duration')
  parser.add_argument('--seed', type=int, default=0, help='randomness of random offsets')
  parser.add_argument('--batch-size', type=int, default=8, help='segments per codec call')
  parser.add_argument('--read-threads', type=int, default=2, help='files decoded ahead of the codec')
  return parser


def _load_codec(args: argparse.Namespace):
  if args.codec:
    return load_codec(args.codec)
  if args.codec_hf:
    return load_transformers(args.codec_hf)
  return load_audiocraft(args.compression_ckpt, args.pretrained_dir)


def main(argv: list[str] | None = None) -> None:
  parser = _parser()
  args = parser.parse_args(argv)
  if args.cache_text and not args.text:
    parser.error('--cache-text needs --text')
  try:
    links: list[str] = []
    splits = find_splits(args.audio, args.manifest, links)
    codec, params = _load_codec(args)
    text = TextEncoder.from_spec(args.text) if args.text else None  # loaded now: a bad spec fails before tokenizing
    segments = SegmentOptions(args.segment_duration, args.segment_offsets, args.min_segment_ratio, args.seed)
    tokenizer = SegmentTokenizer(codec, params, segments, args.batch_size, text if args.cache_text else None,
                                 args.read_threads)
    tfds.disable_progress_bar()  # the tokenizer's bar reports the progress
    folder = build(args.out, splits, tokenizer, args.text)
  except (ValueError, OSError) as e:  # CheckpointError is a ValueError
    sys.exit(f'{parser.prog}: error: {e}')
  if links:
    print(f'{len(links)} symbolic links skipped (they lead to folders or files already visited), e.g. {links[0]}')
  for split, stats in tokenizer.stats.items():
    print(f'{split}: {stats["segments"]} segments of {tokenizer.frames} frames from {stats["files"]} files, '
          f'{len(stats["skipped"])} skipped, {stats["uncaptioned"]} without a caption (unconditional examples)')
    for name, reason in stats['skipped']:
      print(f'  skipped {name}: {reason}')
  print(f'wrote {folder}')


if __name__ == '__main__':
  main()
