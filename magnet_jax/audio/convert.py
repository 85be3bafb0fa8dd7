"""Audio to a model's format: its channel count and sample rate (audiocraft's `convert_audio` rules).

Shapes: C channels, N samples.
"""
import numpy as np
import soxr


def convert(audio: np.ndarray, sample_rate: int, target_rate: int, channels: int) -> np.ndarray:
  """audio [C, N] at `sample_rate` -> float32 [channels, N'] at `target_rate`.

  Channels as audiocraft's `convert_audio_channels`: averaged to mono, mono repeated, or the first `channels`
  kept; resampled with soxr (high quality) when the rates differ. Float samples are taken as they are (full scale
  1.0); signed integer PCM (int16, int32, ...) is scaled to it (int16 / 32768, as soundfile reads it).

  Raises:
    ValueError: no samples, non-finite samples (NaN or inf), a dtype that is neither float nor signed integer, or
      fewer channels than needed and not mono.
  """
  audio = np.asarray(audio)
  if np.issubdtype(audio.dtype, np.signedinteger):
    audio = audio / np.float32(2 ** (8 * audio.dtype.itemsize - 1))
  elif not np.issubdtype(audio.dtype, np.floating):
    raise ValueError(f'audio samples must be float (full scale 1.0) or signed integer PCM, got {audio.dtype}')
  audio = np.asarray(audio, np.float32)
  if audio.ndim != 2 or not audio.size:
    raise ValueError(f'audio must be [C, N] with N > 0 samples, got shape {audio.shape}')
  if not np.isfinite(audio).all():
    raise ValueError('audio holds non-finite samples (NaN or inf)')
  have = audio.shape[0]
  if have != channels:
    if channels == 1:
      audio = audio.mean(axis=0, keepdims=True)
    elif have == 1:
      audio = np.repeat(audio, channels, axis=0)
    elif have > channels:
      audio = audio[:channels]
    else:
      raise ValueError(f'{have} audio channels cannot make {channels}')
  if sample_rate != target_rate:
    audio = soxr.resample(audio.T, sample_rate, target_rate, quality='HQ').T
  return np.ascontiguousarray(audio, dtype=np.float32)


def resample_loop(audio: np.ndarray, samples: int) -> np.ndarray:
  """A loop [..., N] -> [..., samples] float32, resampled as a periodic signal (band-limited, by FFT): the wrap from
  its end to its start stays as continuous as it was, which an ordinary resampler (padding the edges) would not keep.
  """
  if samples < 1:
    raise ValueError(f'a loop needs at least one sample, got {samples}')
  audio = np.asarray(audio, np.float64)
  if audio.shape[-1] == samples:
    return audio.astype(np.float32)
  import scipy.signal  # here, not at the top: importing it takes a second, and every command imports this module
  return scipy.signal.resample(audio, samples, axis=-1).astype(np.float32)
