"""The default model's music corpus: procedurally composed clips, rendered by NumPy synthesis, with captions.

  python -m magnet_jax.apps.corpus --out DIR --num-clips 2000 --seed 0 [--sample-rate 16000 --duration 5]

`generate_corpus` writes the WAVs and JSONL manifests (writer.py); `make_clip` renders one clip in memory.

  compose.py      a clip's arrangement (what plays, in which key, how fast) from a seeded RNG, and its notes
  patterns.py     keys, scales, chord progressions and drum patterns
  instruments.py  NumPy synthesis of one note or one drum hit
  render.py       notes -> audio: one bus per instrument, balanced, the mix peak-normalised
  captions.py     a clip's caption, every statement true of its audio
  writer.py       the corpus on disk: WAVs and a JSONL manifest per split, written atomically
  clips.py        one split rendered in memory (codec training and evaluation)
"""
from magnet_jax.corpus.compose import CATEGORIES, Arrangement, draw_arrangement
from magnet_jax.corpus.writer import SPLITS, Clip, generate_corpus, make_clip, split_of

__all__ = ['CATEGORIES', 'SPLITS', 'Arrangement', 'Clip', 'draw_arrangement', 'generate_corpus', 'make_clip',
           'split_of']
