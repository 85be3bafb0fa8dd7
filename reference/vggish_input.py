"""Google's VGGish input pipeline in NumPy (float64), for parity tests of magnet_jax/evaluation/vggish.py.

Follows, step by step and with the same parameters, `vggish_input.waveform_to_examples`, `vggish_params` and
`mel_features` (`frame`, `periodic_hann`, `stft_magnitude`, `hertz_to_mel`, `spectrogram_to_mel_matrix`,
`log_mel_spectrogram`) of github.com/tensorflow/models, research/audioset/vggish (Apache License 2.0, The
TensorFlow Authors). Written independently as a plain transcription of that algorithm (not a copy of its text),
kept deliberately naive: one band at a time, float64 throughout, the original's framing arithmetic. Only 16 kHz
input (the original resamples other rates with resampy, which the callers here do beforehand).
"""
import numpy as np

SAMPLE_RATE = 16000
STFT_WINDOW_SECONDS = 0.025
STFT_HOP_SECONDS = 0.010
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_WINDOW_SECONDS = 0.96
EXAMPLE_HOP_SECONDS = 0.96


def frame(data: np.ndarray, window_length: int, hop_length: int) -> np.ndarray:
  """[N, ...] -> [1 + (N - window_length) // hop_length, window_length, ...]: whole frames only, no padding."""
  count = 1 + int(np.floor((data.shape[0] - window_length) / hop_length))
  return np.stack([data[i * hop_length:i * hop_length + window_length] for i in range(count)])


def periodic_hann(window_length: int) -> np.ndarray:
  """A raised cosine of period `window_length` (not np.hanning's symmetric window of period N - 1)."""
  return 0.5 - 0.5 * np.cos(2 * np.pi / window_length * np.arange(window_length))


def stft_magnitude(signal: np.ndarray, fft_length: int, hop_length: int, window_length: int) -> np.ndarray:
  """|rfft| of periodic-Hann windowed frames, zero-padded to fft_length: [frames, fft_length // 2 + 1]."""
  frames = frame(signal, window_length, hop_length)
  return np.abs(np.fft.rfft(frames * periodic_hann(window_length), int(fft_length)))


def hertz_to_mel(hertz):
  return 1127.0 * np.log(1.0 + np.asarray(hertz, np.float64) / 700.0)


def spectrogram_to_mel_matrix(num_mel_bins: int, num_spectrogram_bins: int, audio_sample_rate: int,
                              lower_edge_hertz: float, upper_edge_hertz: float) -> np.ndarray:
  """[num_spectrogram_bins, num_mel_bins]: HTK triangles, linear in mel, zero on the DC bin."""
  nyquist = audio_sample_rate / 2.0
  if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= nyquist:
    raise ValueError(f'bad band edges {lower_edge_hertz}, {upper_edge_hertz} for Nyquist {nyquist}')
  bins_mel = hertz_to_mel(np.linspace(0.0, nyquist, num_spectrogram_bins))
  edges = np.linspace(hertz_to_mel(lower_edge_hertz), hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
  weights = np.empty((num_spectrogram_bins, num_mel_bins))
  for i in range(num_mel_bins):
    lower, centre, upper = edges[i:i + 3]
    rising = (bins_mel - lower) / (centre - lower)
    falling = (upper - bins_mel) / (upper - centre)
    weights[:, i] = np.maximum(0.0, np.minimum(rising, falling))
  weights[0, :] = 0.0
  return weights


def log_mel_spectrogram(data: np.ndarray, audio_sample_rate: int, log_offset: float, window_length_secs: float,
                        hop_length_secs: float, **mel_kwargs) -> np.ndarray:
  """[N] -> [frames, num_mel_bins] log(mel-weighted STFT magnitude + log_offset)."""
  window_length = int(round(audio_sample_rate * window_length_secs))
  hop_length = int(round(audio_sample_rate * hop_length_secs))
  fft_length = 2 ** int(np.ceil(np.log(window_length) / np.log(2.0)))
  spectrogram = stft_magnitude(data, fft_length, hop_length, window_length)
  mel = spectrogram @ spectrogram_to_mel_matrix(num_spectrogram_bins=spectrogram.shape[1],
                                                audio_sample_rate=audio_sample_rate, **mel_kwargs)
  return np.log(mel + log_offset)


def waveform_to_examples(data: np.ndarray, sample_rate: int) -> np.ndarray:
  """[N] or [N, C] audio at 16 kHz -> [P, 96, 64] log-mel examples (whole examples only)."""
  if data.ndim > 1:
    data = np.mean(data, axis=1)
  if sample_rate != SAMPLE_RATE:
    raise ValueError(f'resample to {SAMPLE_RATE} Hz first (the original uses resampy), got {sample_rate}')
  log_mel = log_mel_spectrogram(np.asarray(data, np.float64), audio_sample_rate=SAMPLE_RATE, log_offset=LOG_OFFSET,
                                window_length_secs=STFT_WINDOW_SECONDS, hop_length_secs=STFT_HOP_SECONDS,
                                num_mel_bins=NUM_MEL_BINS, lower_edge_hertz=MEL_MIN_HZ, upper_edge_hertz=MEL_MAX_HZ)
  features_rate = 1.0 / STFT_HOP_SECONDS
  window = int(round(EXAMPLE_WINDOW_SECONDS * features_rate))
  hop = int(round(EXAMPLE_HOP_SECONDS * features_rate))
  return frame(log_mel, window, hop)
