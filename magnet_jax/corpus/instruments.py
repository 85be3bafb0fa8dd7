"""Instrument voices: NumPy synthesis of one note or one drum hit.

Every voice is `voice(freq, hold, sample_rate, rng) -> float64 [hold + R]`: the note starts at sample 0, its key
is held for `hold` samples and it dies away over the voice's own release R (drum hits ignore `freq` and `hold`
and return their natural length). Peaks are roughly 1; the mixer sets the levels.

  kick, snare, hihat, open_hat, clap   synth drum kit (swept sine, filtered noise)
  bass      two-table synth bass with a decaying bright layer
  piano     inharmonic additive partials, each decaying at its own rate
  guitar    Karplus-Strong plucked string (noise burst through a tuned, damped delay loop)
  pad       three detuned band-limited saws with a slow attack
  flute     near-sine with delayed vibrato and breath noise
  organ     drawbar harmonics with tremolo
  marimba   struck wooden bar: partials at 1, 3.9 and 9.2 f decaying fast, plus a mallet click (only in the
            'mallets' style, which the default corpus does not render)
"""
from collections.abc import Callable

import numpy as np

Voice = Callable[[float, int, int, np.random.Generator], np.ndarray]

_TABLE_SIZE = 2048  # samples per wavetable cycle


def _seconds(n: int, sample_rate: int) -> np.ndarray:
  """[n] sample times in seconds."""
  return np.arange(n) / sample_rate


def _envelope(hold: int, release: float, sample_rate: int, attack: float, decay: float = np.inf,
              sustain: float = 1.0) -> np.ndarray:
  """[hold + R] gain: linear attack, exponential decay towards `sustain`, linear fade to 0 over R after `hold`."""
  num_release = max(int(release * sample_rate), 1)
  t = _seconds(hold + num_release, sample_rate)
  env = np.minimum(t / attack, 1.0) * (sustain + (1.0 - sustain) * np.exp(-t / decay))
  env[hold:] *= np.linspace(1.0, 0.0, num_release)
  return env


def _harmonic_table(amps: np.ndarray) -> np.ndarray:
  """[_TABLE_SIZE + 1] one cycle of sum_k amps[k - 1] sin(2 pi k x), plus the wrap-around sample."""
  spectrum = np.zeros(_TABLE_SIZE // 2 + 1, complex)
  spectrum[1:len(amps) + 1] = -0.5j * _TABLE_SIZE * np.asarray(amps)
  table = np.fft.irfft(spectrum, _TABLE_SIZE)
  return np.append(table, table[0])


def _lookup(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
  """[n] linear-interpolated wavetable read at phases `cycles` [n] (in cycles, any real value)."""
  position = (cycles % 1.0) * _TABLE_SIZE
  index = position.astype(np.int64)
  frac = position - index
  return table[index] * (1.0 - frac) + table[index + 1] * frac


def _band_limited(freq: float, sample_rate: int, num: int, rolloff: float) -> np.ndarray:
  """[num] harmonic amplitudes 1 / k**rolloff, zero from 0.45 sample_rate upwards (no aliasing)."""
  k = np.arange(1, num + 1)
  return np.where(k * freq < 0.45 * sample_rate, k ** -rolloff, 0.0)


def _noise(rng: np.random.Generator, n: int, sample_rate: int, low: float | None = None,
           high: float | None = None) -> np.ndarray:
  """[n] white noise, band-passed to [low, high] Hz (either may be None) by 2nd-order Butterworth filters."""
  from scipy import signal  # here, not at the top: importing it takes a second, and the commands import this module
  x = rng.standard_normal(n)
  nyquist = 0.5 * sample_rate
  if high is not None and high < 0.9 * nyquist:
    x = signal.sosfilt(signal.butter(2, high, 'lowpass', fs=sample_rate, output='sos'), x)
  if low is not None:
    x = signal.sosfilt(signal.butter(2, min(low, 0.8 * nyquist), 'highpass', fs=sample_rate, output='sos'), x)
  return x / (np.abs(x).max() + 1e-9)


def kick(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """[0.4 s] sine swept from ~150 Hz down to 45 Hz with a short click."""
  t = _seconds(int(0.4 * sample_rate), sample_rate)
  sweep = 45.0 + 105.0 * np.exp(-t / 0.03)
  body = np.sin(2 * np.pi * np.cumsum(sweep) / sample_rate) * np.exp(-t / 0.15)
  return body + 0.3 * _noise(rng, len(t), sample_rate, high=4000.0) * np.exp(-t / 0.004)


def snare(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """[0.25 s] 190 Hz drum tone plus a burst of high-passed noise (the wires)."""
  t = _seconds(int(0.25 * sample_rate), sample_rate)
  tone = np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.04)
  return 0.6 * tone + _noise(rng, len(t), sample_rate, low=1200.0) * np.exp(-t / 0.06)


def _hat(decay: float, length: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """[length s] high-passed noise with an exponential decay of time constant `decay` s."""
  t = _seconds(int(length * sample_rate), sample_rate)
  return _noise(rng, len(t), sample_rate, low=6500.0) * np.exp(-t / decay)


def hihat(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """[0.1 s] closed hi-hat."""
  return _hat(0.02, 0.1, sample_rate, rng)


def open_hat(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """[0.4 s] open hi-hat."""
  return _hat(0.12, 0.4, sample_rate, rng)


def clap(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """[0.3 s] three quick bursts of band-passed noise and a short tail."""
  t = _seconds(int(0.3 * sample_rate), sample_rate)
  bursts = sum(np.where(t >= start, np.exp(-(t - start) / 0.004), 0.0) for start in (0.0, 0.011, 0.022))
  tail = np.where(t >= 0.022, np.exp(-(t - 0.022) / 0.07), 0.0)
  return _noise(rng, len(t), sample_rate, low=900.0, high=2800.0) * (0.7 * bursts + tail)


def bass(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """Synth bass: a warm table plus a bright table that fades in 80 ms (a closing filter), 60 ms release."""
  env = _envelope(hold, 0.06, sample_rate, attack=0.004, decay=0.35, sustain=0.5)
  t = _seconds(len(env), sample_rate)
  cycles = freq * t + rng.random()
  warm = _lookup(_harmonic_table(_band_limited(freq, sample_rate, 6, 2.0)), cycles)
  bright = _lookup(_harmonic_table(_band_limited(freq, sample_rate, 16, 1.0)), cycles)
  return env * (warm + 0.5 * bright * np.exp(-t / 0.08))


def piano(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """Piano-like tone: 10 stretched partials f_k = k f sqrt(1 + B k^2), higher ones decaying faster; 0.2 s damper."""
  env = _envelope(hold, 0.2, sample_rate, attack=0.003)
  t = _seconds(len(env), sample_rate)
  k = np.arange(1, 11)
  partials = k * freq * np.sqrt(1.0 + 3e-4 * k ** 2)
  amps = np.where(partials < 0.45 * sample_rate, k ** -1.3, 0.0)
  decay = 1.2 * min((261.6 / freq) ** 0.5, 2.0) / k ** 0.8  # seconds; low notes ring longer
  phases = 2 * np.pi * rng.random(len(k))
  tone = (amps[:, None] * np.sin(2 * np.pi * partials[:, None] * t + phases[:, None])
          * np.exp(-t / decay[:, None])).sum(0)
  return env * tone


def guitar(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """Karplus-Strong string, 0.1 s damping.

  y[n] = x[n] + g (a y[n - N] + 0.5 y[n - N - 1] + b y[n - N - 2]): the 3-tap loop filter averages neighbours
  (string losses) and interpolates the fractional part of the period sample_rate / freq; g sets a ~2 s decay.
  """
  env = _envelope(hold, 0.1, sample_rate, attack=0.001)
  period = sample_rate / freq
  delay = int(period - 0.5)
  frac = period - 0.5 - delay  # the taps delay by N + 0.5 + frac at low frequencies
  gain = 10 ** (-3.0 / (2.0 * freq))  # -60 dB after 2 s at the fundamental
  denominator = np.zeros(delay + 3)
  denominator[0] = 1.0
  denominator[delay:] -= gain * np.array([0.5 * (1.0 - frac), 0.5, 0.5 * frac])
  from scipy import signal  # here, not at the top (see _noise)
  burst = np.zeros(len(env))
  burst[:delay] = signal.lfilter([0.5], [1.0, -0.5], rng.uniform(-1.0, 1.0, delay))  # a softened pluck
  return env * signal.lfilter([1.0], denominator, burst)


def pad(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """Sustained pad: three saws detuned by +-7 cents, harmonics rolled off above ~1.5 kHz, 0.8 s attack/1 s release."""
  env = _envelope(hold, 1.0, sample_rate, attack=0.8)
  t = _seconds(len(env), sample_rate)
  k = np.arange(1, 25)
  table = _harmonic_table(_band_limited(freq * 1.01, sample_rate, len(k), 1.0) * np.exp(-k * freq / 1500.0))
  detune = 2.0 ** (np.array([-7.0, 0.0, 7.0]) / 1200.0)
  return env * sum(_lookup(table, f * t + rng.random()) for f in freq * detune) / 3.0


def flute(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """Flute-like: near-sine with 5 Hz vibrato fading in after 0.15 s, plus breath noise; 60 ms attack."""
  env = _envelope(hold, 0.1, sample_rate, attack=0.06)
  t = _seconds(len(env), sample_rate)
  vibrato = 0.006 * np.clip((t - 0.15) / 0.3, 0.0, 1.0) * np.sin(2 * np.pi * 5.0 * t)
  cycles = np.cumsum(freq * (1.0 + vibrato)) / sample_rate + rng.random()
  tone = _lookup(_harmonic_table(_band_limited(freq, sample_rate, 4, 1.0) * [1.0, 0.15, 0.06, 0.02]), cycles)
  breath = _noise(rng, len(t), sample_rate, low=freq, high=min(4.0 * freq, 0.4 * sample_rate))
  return env * (tone + 0.12 * breath)


def organ(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """Drawbar organ: harmonics 1, 2, 3, 4, 6, 8 with a 6 Hz tremolo; 10 ms attack, 60 ms release."""
  env = _envelope(hold, 0.06, sample_rate, attack=0.01)
  t = _seconds(len(env), sample_rate)
  drawbars = np.zeros(8)
  drawbars[[0, 1, 2, 3, 5, 7]] = [1.0, 0.7, 0.45, 0.35, 0.2, 0.12]
  table = _harmonic_table(drawbars * (np.arange(1, 9) * freq < 0.45 * sample_rate))
  return env * (1.0 + 0.12 * np.sin(2 * np.pi * 6.0 * t)) * _lookup(table, freq * t + rng.random())


def marimba(freq: float, hold: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """Marimba-like: a tuned bar's inharmonic partials (1, 3.9, 9.2 f), the upper ones dying within ~50 ms, and a
  2 ms mallet click; the bar rings ~0.3-0.6 s whatever `hold` is (a struck bar has no sustain)."""
  ring = 0.6 * min((261.6 / freq) ** 0.5, 1.5)  # seconds; low bars ring longer
  t = _seconds(int(4 * ring * sample_rate), sample_rate)
  ratios, amps, decays = np.array([1.0, 3.9, 9.2]), np.array([1.0, 0.35, 0.12]), np.array([ring, 0.05, 0.015])
  amps = np.where(ratios * freq < 0.45 * sample_rate, amps, 0.0)
  phases = 2 * np.pi * rng.random(len(ratios))
  tone = (amps[:, None] * np.sin(2 * np.pi * ratios[:, None] * freq * t + phases[:, None])
          * np.exp(-t / decays[:, None])).sum(0)
  click = _noise(rng, len(t), sample_rate, low=2000.0, high=6000.0) * np.exp(-t / 0.002)
  return np.minimum(t / 0.001, 1.0) * (tone + 0.2 * click)


VOICES: dict[str, Voice] = {'kick': kick, 'snare': snare, 'hihat': hihat, 'open_hat': open_hat, 'clap': clap,
                            'bass': bass, 'piano': piano, 'guitar': guitar, 'pad': pad, 'flute': flute, 'organ': organ,
                            'marimba': marimba}


def midi_to_hz(pitch: float) -> float:
  """Frequency of MIDI note `pitch` (A4 = 69 = 440 Hz)."""
  return 440.0 * 2.0 ** ((pitch - 69) / 12.0)
