"""Spectrograms in NumPy, and `mel_distance`, the codec's reconstruction metric.

Shapes: N audio samples, F frames, B = n_fft // 2 + 1 frequency bins, M mel bands. Frames are centred (the audio
is reflect-padded by n_fft // 2), so F = 1 + N // hop.
"""
import numpy as np


def default_n_fft(sample_rate: int) -> int:
  """The power of two nearest to a 64 ms window (1024 at 16 kHz)."""
  return 2 ** int(round(np.log2(0.064 * sample_rate)))


def stft_magnitude(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
  """[N] -> [F, B] |STFT| with a Hann window, scaled so that a full-scale sine peaks near 0.5."""
  audio = np.asarray(audio, np.float64)
  padded = np.pad(audio, n_fft // 2, mode='reflect' if len(audio) > n_fft // 2 else 'constant')
  frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
  window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
  return np.abs(np.fft.rfft(frames * window, axis=-1)) / window.sum()


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
  """[M, B] triangular filters (peak 1) equally spaced on the HTK mel scale 2595 log10(1 + f / 700)."""
  to_mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)
  edges = 700.0 * (10 ** (np.linspace(to_mel(fmin), to_mel(fmax or sample_rate / 2), n_mels + 2) / 2595.0) - 1.0)
  freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
  lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
  rising = (freqs - lower) / (centre - lower)
  falling = (upper - freqs) / (upper - centre)
  return np.maximum(0.0, np.minimum(rising, falling))


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                          fmax: float | None = None) -> np.ndarray:
  """[M, B] area-normalised triangular filters on the Slaney mel scale: librosa.filters.mel's default (htk=False,
  norm='slaney'), the front end of models trained on librosa spectrograms (musicnn)."""
  f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
  min_log_mel = min_log_hz / f_sp
  def to_mel(f):
    f = np.asarray(f, np.float64)
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, f / f_sp)
  def to_hz(m):
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)
  edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax or sample_rate / 2), n_mels + 2))
  freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
  widths = np.diff(edges)
  ramps = edges[:, None] - freqs[None, :]
  rising = -ramps[:-2] / widths[:-1, None]
  falling = ramps[2:] / widths[1:, None]
  return np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def log_mel_spectrogram(audio: np.ndarray, sample_rate: int, n_mels: int = 64, n_fft: int | None = None,
                        hop: int | None = None, floor_db: float = -80.0) -> np.ndarray:
  """[N] -> [F, M] mel power in dB (about dBFS: a full-scale sine's band reads near -6 dB), floored at floor_db.

  n_fft defaults to default_n_fft(sample_rate), hop to n_fft // 4.
  """
  n_fft = n_fft or default_n_fft(sample_rate)
  power = stft_magnitude(audio, n_fft, hop or n_fft // 4) ** 2
  mel = power @ mel_filterbank(sample_rate, n_fft, n_mels).T
  return np.maximum(10.0 * np.log10(mel + 1e-12), floor_db)


def mel_distance(ref: np.ndarray, est: np.ndarray, sample_rate: int, n_mels: int = 64) -> float:
  """Mean absolute difference in dB between the log-mel spectrograms of `ref` [N] and `est` [N'].

  Both are cut to the shorter length first (a codec may pad); 64 mel bands, 64 ms windows, 16 ms hops. Bands below
  -80 dBFS count as -80 dB. For scale, means over 50 held-out 5 s clips at 16 kHz (seed 0; min-max in brackets):

    white noise at 40 dB SNR    2.0 (0.6-7.3)     8-bit mu-law           2.0 (0.6-7.9)
    white noise at 30 dB SNR    5.5 (1.9-15)      low-pass at 4 kHz      2.5 (0.0-4.8)
    white noise at 20 dB SNR   10.4 (4.7-22)      gain -6 dB             4.4 (1.8-5.9)
    white noise at 10 dB SNR   16.9 (9.9-30)      another clip          17.4 (5.2-24)

  Noise weighs most in clips with empty bands (solo bass), so compare a codec against such baselines on the same
  clips rather than against one absolute number.
  """
  length = min(len(ref), len(est))
  if length == 0:
    raise ValueError('mel_distance needs non-empty audio')
  diff = log_mel_spectrogram(ref[:length], sample_rate, n_mels) - log_mel_spectrogram(est[:length], sample_rate,
                                                                                        n_mels)
  return float(np.mean(np.abs(diff)))
