"""Notes -> audio: renders each instrument on its own bus, balances the buses and peak-normalises the mix."""
import numpy as np

from magnet_jax.corpus import instruments
from magnet_jax.corpus.compose import Note

PEAK = 10 ** (-1.0 / 20)  # the mix's peak: -1 dBFS of headroom
_FADE_OUT = 0.02          # seconds, so that notes cut by the clip's end do not click
# RMS of each bus relative to the others; the drums carry the groove, the pad and organ sit behind.
LEVELS = {'drums': 1.0, 'bass': 0.8, 'piano': 0.7, 'guitar': 0.7, 'organ': 0.5, 'pad': 0.55, 'flute': 0.55,
          'marimba': 0.7}
_KIT = {'kick': 1.0, 'snare': 0.7, 'clap': 0.6, 'hihat': 0.25, 'open_hat': 0.2}  # peak of each drum in the kit


def render_bus(notes: list[Note], num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """float64 [num_samples]: the sum of `notes`; identical (voice, pitch, hold) notes share one synthesis."""
  bus = np.zeros(num_samples)
  cache = {}
  for note in notes:
    start = int(round(note.start * sample_rate))
    key = (note.voice, note.pitch, int(note.hold * sample_rate))
    if key not in cache:
      wave = instruments.VOICES[note.voice](instruments.midi_to_hz(note.pitch), key[2], sample_rate, rng)
      cache[key] = wave * _KIT.get(note.voice, 1.0)
    wave = cache[key][:num_samples - start]
    bus[start:start + len(wave)] += note.velocity * wave
  return bus


def mix(parts: dict[str, list[Note]], num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
  """float32 [num_samples]: each part's bus scaled to its LEVELS rms, summed, faded out and peak-normalised to PEAK."""
  out = np.zeros(num_samples)
  for instrument, notes in parts.items():
    bus = render_bus(notes, num_samples, sample_rate, rng)
    out += LEVELS[instrument] * bus / (np.sqrt(np.mean(bus ** 2)) + 1e-9)
  fade = min(int(_FADE_OUT * sample_rate), num_samples)
  out[num_samples - fade:] *= np.linspace(1.0, 0.0, fade)
  return (PEAK * out / (np.abs(out).max() + 1e-9)).astype(np.float32)
