"""Audio signal code shared by the codec, the corpus, the data pipeline, generation and evaluation.

  files.py     reading audio files; atomic (streamed) output files
  wav_stream.py  a 16-bit WAV stream to any file or pipe (header sizes written on close where it seeks)
  convert.py   one conversion to a model's format: channels and sample rate
  spectral.py  STFT, mel filterbank, log-mel spectrogram, mel distance
  stats.py     onset rate, spectral centroid, low-frequency ratio, loudness (prompt-following statistics)
  loudness.py  BS.1770 loudness normalisation
"""
from magnet_jax.audio.spectral import log_mel_spectrogram, mel_distance
from magnet_jax.audio.stats import audio_stats, low_frequency_ratio, onset_rate, rms_db, spectral_centroid

__all__ = ['audio_stats', 'log_mel_spectrogram', 'low_frequency_ratio', 'mel_distance', 'onset_rate', 'rms_db',
           'spectral_centroid']
