"""The embedded default's music corpus: procedurally composed clips, rendered by NumPy synthesis, with captions.

  python -m magnet_jax.apps.corpus --out DIR --num-clips 2000 --seed 0 [--sample-rate 16000 --duration 5]

`generate_corpus` writes the WAVs and JSONL manifests (writer.py); `make_clip` renders one clip in memory.
"""
from magnet_jax.corpus.compose import CATEGORIES, Arrangement, draw_arrangement
from magnet_jax.corpus.writer import SPLITS, Clip, generate_corpus, make_clip, split_of

__all__ = ['CATEGORIES', 'SPLITS', 'Arrangement', 'Clip', 'draw_arrangement', 'generate_corpus', 'make_clip',
           'split_of']
