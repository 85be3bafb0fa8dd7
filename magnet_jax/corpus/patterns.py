"""Musical material: keys, scales, chord progressions and drum patterns.

Pitches are MIDI numbers; scale degrees count from 0 (the tonic) and run past 6 into the next octaves, so degree
9 of C major is the E an octave and a third above the tonic. Drum patterns are one bar of 16 sixteenth-note steps
per voice: 'X' accent, 'x' normal hit, 'o' ghost note, '.' rest.
"""
import dataclasses

PITCH_NAMES = ('C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B')
SCALES = {'major': (0, 2, 4, 5, 7, 9, 11), 'minor': (0, 2, 3, 5, 7, 8, 10)}  # natural minor
# One chord per bar, as the scale degree of each triad's root: I-V-vi-IV, i-VI-III-VII, ...
PROGRESSIONS = {
    'major': ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 3), (1, 4, 0, 0), (0, 3, 0, 4)),
    'minor': ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4)),
}
_VELOCITY = {'X': 1.0, 'x': 0.8, 'o': 0.35}


@dataclasses.dataclass(frozen=True)
class DrumPattern:
  """One bar of a drum groove and the tempi it is played at."""
  grid: dict[str, str]        # drum voice -> 16 steps of 'X'/'x'/'o'/'.'
  bpm_range: tuple[int, int]  # inclusive
  swing: float = 0.0          # delay of the off-beat eighth notes' 16th steps (2, 6, 10, 14), in steps


DRUM_PATTERNS = {
    'four_on_the_floor': DrumPattern(
        {'kick': 'X...X...X...X...', 'clap': '....x.......x...', 'hihat': 'x...x...x...x...',
         'open_hat': '..x...x...x...x.'}, (112, 136)),
    'rock': DrumPattern(
        {'kick': 'X.....x.X.x.....', 'snare': '....X.......X...', 'hihat': 'x.x.x.x.x.x.x.x.'}, (80, 160)),
    'breakbeat': DrumPattern(
        {'kick': 'X.x.......xx....', 'snare': '....X..o.o..X..o', 'hihat': 'x.x.x.x.x.x.x.x.'}, (100, 170)),
    'hip_hop': DrumPattern(
        {'kick': 'X......x..x.....', 'snare': '....X.......X...', 'hihat': 'x.x.x.x.x.x.x.xo'}, (72, 100),
        swing=0.33),
}


def key_name(root: int, mode: str) -> str:
  """'A minor' for root 9 (pitch class of the tonic), mode 'minor'."""
  return f'{PITCH_NAMES[root]} {mode}'


def degree_pitch(degree: int, root: int, mode: str, tonic_octave_base: int) -> int:
  """MIDI pitch of scale `degree`; the tonic (degree 0) sits at tonic_octave_base + root."""
  octave, step = divmod(degree, 7)
  return tonic_octave_base + root + 12 * octave + SCALES[mode][step]


def tonic_base(root: int, low: int) -> int:
  """The multiple of 12 that puts the tonic (base + root) in [low, low + 12)."""
  return low + (root - low) % 12 - root


def chord_degrees(chord: int, size: int = 3) -> tuple[int, ...]:
  """Stacked thirds on scale degree `chord`: (d, d + 2, d + 4[, d + 6])."""
  return tuple(chord + 2 * i for i in range(size))


def drum_hits(pattern: DrumPattern, step_seconds: float, num_bars: int) -> list[tuple[str, float, float]]:
  """All (voice, time in seconds, velocity) hits of `num_bars` bars of `pattern`, sorted by time."""
  hits = []
  for voice, steps in pattern.grid.items():
    for bar in range(num_bars):
      for i, symbol in enumerate(steps):
        if symbol != '.':
          swing = pattern.swing if i % 4 == 2 else 0.0
          hits.append((voice, (16 * bar + i + swing) * step_seconds, _VELOCITY[symbol]))
  return sorted(hits, key=lambda hit: hit[1])
