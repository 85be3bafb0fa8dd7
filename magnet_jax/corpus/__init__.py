"""The embedded default's music corpus: procedurally composed clips, rendered by NumPy synthesis, with captions.

  python -m magnet_jax.corpus --out DIR --num-clips 2000 --seed 0 [--sample-rate 16000 --duration 5]

`generate_corpus` writes the WAVs and JSONL manifests (writer.py); `make_clip` renders one clip in memory. The
statistics in stats.py (onset rate, spectral centroid, ...) check that generated audio follows its prompt, and
`mel_distance` (spectral.py) scores codec reconstructions.
"""
from magnet_jax.corpus.compose import CATEGORIES, Arrangement, draw_arrangement
from magnet_jax.corpus.spectral import log_mel_spectrogram, mel_distance
from magnet_jax.corpus.stats import audio_stats, low_frequency_ratio, onset_rate, rms_db, spectral_centroid
from magnet_jax.corpus.writer import SPLITS, Clip, generate_corpus, make_clip, split_of

__all__ = ['CATEGORIES', 'SPLITS', 'Arrangement', 'Clip', 'audio_stats', 'draw_arrangement', 'generate_corpus',
           'log_mel_spectrogram', 'low_frequency_ratio', 'make_clip', 'mel_distance', 'onset_rate', 'rms_db',
           'spectral_centroid', 'split_of']
