"""Training data: synthetic token sets (tests, smoke runs) and codec-token datasets built from audio.

  audio.py      a user's audio on disk -> captioned files, waveforms and fixed-length segments
  captions.py   captions -> conditioner text: audiocraft's caption augmentations, the text-encoder spec
  builder.py    captioned audio -> fixed-length segments of codec tokens, as a TFDS (ArrayRecord) dataset
  prepare.py    a folder of captioned audio -> that dataset (the library behind apps/prepare.py)
  loader.py     training batches from it: a seeded, resumable grain pipeline
  synthetic.py  a fixed, deterministic set of synthetic examples
  sources.py    the data source named by `config.data.source`
"""
