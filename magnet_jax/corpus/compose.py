"""A clip's arrangement (what plays, in which key, how fast) drawn from a seeded RNG, and the notes it plays.

Categories, and the parts each one has (role in brackets):
  groove   drums, sometimes bass [bass]
  solo     one of piano, guitar, flute, bass, organ [solo], no drums
  duo      one of piano, guitar, organ [chords] or flute [melody], with drums
  band     drums, bass [bass], a chord instrument [chords], sometimes a melody instrument [melody]
  ambient  a sustained pad [pad], no drums, slow; a 'drone' holds one chord throughout
and, only when asked for by name (`EXTRA_CATEGORIES`: styles the default corpus lacks, to fine-tune on):
  mallets  solo marimba [ostinato]: sixteenth-note arpeggios over the chords, no drums, 100-150 bpm
"""
import dataclasses
import math
from typing import NamedTuple

import numpy as np

from magnet_jax.corpus import patterns

CATEGORIES = ('groove', 'solo', 'duo', 'band', 'ambient')
EXTRA_CATEGORIES = ('mallets',)  # never drawn at random, so the default corpus of every seed is unchanged
_CATEGORY_WEIGHTS = (0.2, 0.3, 0.15, 0.2, 0.15)
SOLO_INSTRUMENTS = ('piano', 'guitar', 'flute', 'bass', 'organ')
CHORD_INSTRUMENTS = ('piano', 'guitar', 'organ', 'pad')
MELODY_INSTRUMENTS = ('flute', 'piano', 'guitar', 'organ')
_DUO_ROLES = {'piano': 'chords', 'guitar': 'chords', 'organ': 'chords', 'flute': 'melody'}
# Lowest MIDI pitch of each instrument's tonic for chords, and the [low, high] MIDI range of its melodies.
_CHORD_LOW = {'piano': 48, 'guitar': 40, 'organ': 48, 'pad': 48}
_MELODY_RANGE = {'flute': (72, 93), 'piano': (64, 84), 'guitar': (59, 79), 'organ': (67, 84), 'bass': (33, 55)}
_BASS_LOW = 33  # the bass's tonic lies in A1 .. G#2


class Note(NamedTuple):
  """One note or drum hit."""
  voice: str       # a key of instruments.VOICES
  start: float     # seconds from the clip start
  pitch: int       # MIDI pitch (0 for drums)
  hold: float      # seconds the key is held (0 for drums)
  velocity: float  # linear gain in (0, 1]


@dataclasses.dataclass(frozen=True)
class Arrangement:
  """The attributes of a clip that its caption may state, plus the chord progression."""
  category: str                        # one of CATEGORIES
  parts: tuple[tuple[str, str], ...]   # (instrument, role) pairs; instrument 'drums' has role 'drums'
  drums: str                           # a key of patterns.DRUM_PATTERNS, or 'none'
  bpm: int                             # quarter notes per minute
  root: int                            # pitch class of the tonic, 0 = C
  mode: str                            # 'major' or 'minor'
  progression: tuple[int, ...]         # chord roots as scale degrees, one chord per bar, cycled

  @property
  def instruments(self) -> tuple[str, ...]:
    return tuple(instrument for instrument, _ in self.parts)

  @property
  def key(self) -> str:
    return patterns.key_name(self.root, self.mode)

  @property
  def drone(self) -> bool:
    return len(self.progression) == 1


def draw_arrangement(rng: np.random.Generator, category: str | None = None,
                     instrument: str | None = None) -> Arrangement:
  """A random arrangement; `category` and the solo/duo `instrument` are drawn unless given."""
  category = category or str(rng.choice(CATEGORIES, p=_CATEGORY_WEIGHTS))
  allowed = {'solo': SOLO_INSTRUMENTS, 'duo': tuple(_DUO_ROLES)}.get(category, ())
  if instrument is not None and instrument not in allowed:
    raise ValueError(f'instrument={instrument!r} for category={category!r}; expected one of {allowed}')
  drums = 'none' if category in ('solo', 'ambient', 'mallets') else str(rng.choice(list(patterns.DRUM_PATTERNS)))
  if category == 'groove':
    parts = [('bass', 'bass')] if rng.random() < 0.5 else []
  elif category == 'solo':
    parts = [(instrument or str(rng.choice(SOLO_INSTRUMENTS)), 'solo')]
  elif category == 'duo':
    instrument = instrument or str(rng.choice(list(_DUO_ROLES)))
    parts = [(instrument, _DUO_ROLES[instrument])]
  elif category == 'band':
    chords = str(rng.choice(CHORD_INSTRUMENTS))
    parts = [('bass', 'bass'), (chords, 'chords')]
    if rng.random() < 0.6:
      parts.append((str(rng.choice([m for m in MELODY_INSTRUMENTS if m != chords])), 'melody'))
  elif category == 'ambient':
    parts = [('pad', 'pad')]
  elif category == 'mallets':
    parts = [('marimba', 'ostinato')]
  else:
    raise ValueError(f'category={category!r}; expected one of {CATEGORIES + EXTRA_CATEGORIES}')
  if drums != 'none':
    parts.insert(0, ('drums', 'drums'))
    bpm = int(rng.integers(*patterns.DRUM_PATTERNS[drums].bpm_range, endpoint=True))
  else:
    low, high = {'ambient': (60, 80), 'mallets': (100, 150)}.get(category, (60, 140))
    bpm = int(rng.integers(low, high, endpoint=True))
  mode = str(rng.choice(list(patterns.SCALES)))
  progressions = patterns.PROGRESSIONS[mode]
  progression = (0,) if category == 'ambient' and rng.random() < 0.5 else progressions[rng.integers(len(progressions))]
  return Arrangement(category, tuple(parts), drums, bpm, int(rng.integers(12)), mode, tuple(progression))


class _Score:
  """The arrangement's timing and harmony, for the part writers."""

  def __init__(self, arrangement: Arrangement, duration: float):
    self.arrangement = arrangement
    self.beat = 60.0 / arrangement.bpm
    self.num_bars = math.ceil(duration / (4 * self.beat))

  def chord(self, bar: int) -> int:
    progression = self.arrangement.progression
    return progression[bar % len(progression)]

  def pitch(self, degree: int, low: int) -> int:
    """MIDI pitch of scale `degree` with the tonic in [low, low + 12)."""
    a = self.arrangement
    return patterns.degree_pitch(degree, a.root, a.mode, patterns.tonic_base(a.root, low))

  def chord_pitches(self, bar: int, low: int, size: int = 3) -> list[int]:
    return [self.pitch(d, low) for d in patterns.chord_degrees(self.chord(bar), size)]


def _drums(score: _Score, rng: np.random.Generator) -> list[Note]:
  """The drum pattern over all bars, humanised by +-4 ms timing and 15% velocity jitter."""
  hits = patterns.drum_hits(patterns.DRUM_PATTERNS[score.arrangement.drums], score.beat / 4, score.num_bars)
  jitter = rng.normal(0.0, 0.004, len(hits))
  gains = rng.uniform(0.85, 1.0, len(hits))
  return [Note(voice, max(time + j, 0.0), 0, 0.0, velocity * g)
          for (voice, time, velocity), j, g in zip(hits, jitter, gains, strict=True)]


def _bass(score: _Score, rng: np.random.Generator) -> list[Note]:
  """Bass line in one of four styles: whole-bar roots, eighth-note pulse, root-fifth, walking quarters."""
  style = rng.choice(['whole', 'pulse', 'root_fifth', 'walking'])
  beat, notes = score.beat, []
  for bar in range(score.num_bars):
    t0, chord = 4 * bar * beat, score.chord(bar)
    if style == 'whole':
      steps = [(0.0, chord, 3.8)]
    elif style == 'pulse':
      steps = [(0.5 * i, chord, 0.4) for i in range(8)]
    elif style == 'root_fifth':
      steps = [(0.0, chord, 1.8), (2.0, chord + 4, 0.9), (3.0, chord + 7, 0.9)]
    else:
      walk = [chord, chord + 2, chord + 4, score.chord(bar + 1) + int(rng.choice([-1, 1]))]  # approach the next root
      steps = [(float(i), d, 0.9) for i, d in enumerate(walk)]
    notes += [Note('bass', t0 + b * beat, score.pitch(d, _BASS_LOW), h * beat, float(rng.uniform(0.8, 1.0)))
              for b, d, h in steps]
  return notes


def _strum(instrument: str, time: float, pitches: list[int], hold: float, velocity: float,
           spread: float) -> list[Note]:
  """A chord with its notes `spread` seconds apart (low to high for spread > 0)."""
  order = pitches if spread >= 0 else pitches[::-1]
  return [Note(instrument, time + i * abs(spread), p, hold, velocity) for i, p in enumerate(order)]


def _chords(score: _Score, rng: np.random.Generator, instrument: str) -> list[Note]:
  """Chord accompaniment in a style that suits the instrument (block, arpeggio, strum, sustain, stabs)."""
  styles = {'piano': ['block', 'half', 'arpeggio'], 'guitar': ['strum', 'arpeggio'], 'organ': ['sustain', 'stabs'],
            'pad': ['sustain']}[instrument]
  style, beat, low = rng.choice(styles), score.beat, _CHORD_LOW[instrument]
  notes = []
  for bar in range(score.num_bars):
    t0 = 4 * bar * beat
    if instrument == 'guitar':
      root, third, fifth = score.chord_pitches(bar, low)
      pitches = [root, fifth, root + 12, third + 12, fifth + 12]
    else:
      pitches = score.chord_pitches(bar, low, size=4 if instrument == 'pad' else 3)
    if style == 'sustain':
      bars = 1 if not score.arrangement.drone else score.num_bars
      if bar % bars == 0:
        notes += _strum(instrument, t0, pitches, (4 * bars - 0.1) * beat, 0.8, 0.0)
    elif style in ('block', 'half', 'stabs'):
      beats, hold = {'block': (range(4), 0.9), 'half': ((0, 2), 1.9), 'stabs': ((0.5, 1.5, 2.5, 3.5), 0.3)}[style]
      for b in beats:
        notes += _strum(instrument, t0 + b * beat, pitches, hold * beat, float(rng.uniform(0.65, 0.85)), 0.0)
    elif style == 'strum':
      strokes = ((0.0, 1), (1.0, 1), (1.5, -1), (2.5, -1), (3.0, 1), (3.5, -1))
      for b, direction in strokes:
        notes += _strum(instrument, t0 + b * beat, pitches, 0.45 * beat, float(rng.uniform(0.6, 0.9)),
                        0.012 * direction)
    else:  # arpeggio: eighth notes up and down the chord
      cycle = pitches + pitches[-2:0:-1]
      notes += [Note(instrument, t0 + 0.5 * i * beat, cycle[i % len(cycle)], 0.9 * beat, float(rng.uniform(0.6, 0.8)))
                for i in range(8)]
  return notes


def _ostinato(score: _Score, rng: np.random.Generator, instrument: str) -> list[Note]:
  """Sixteenth notes up and down each bar's chord over two octaves (a mallet ostinato), accenting the beats."""
  low = int(rng.integers(55, 62))
  notes = []
  for bar in range(score.num_bars):
    chord = score.chord_pitches(bar, low)
    cycle = chord + [p + 12 for p in chord]
    cycle = cycle + cycle[-2:0:-1]
    notes += [Note(instrument, (4 * bar + 0.25 * i) * score.beat, cycle[i % len(cycle)], 0.2 * score.beat,
                   float(rng.uniform(0.85, 1.0) if i % 4 == 0 else rng.uniform(0.55, 0.75))) for i in range(16)]
  return notes


def _melody(score: _Score, rng: np.random.Generator, instrument: str) -> list[Note]:
  """A random walk over the scale within the instrument's range; a note that starts a bar takes a chord tone."""
  low, high = _MELODY_RANGE[instrument]
  degrees = [d for d in range(-7, 28) if low <= score.pitch(d, low) <= high]
  durations, weights = (0.5, 1.0, 1.5, 2.0), (0.35, 0.35, 0.15, 0.15)
  position, time, notes = len(degrees) // 2, 0.0, []
  while time < 4 * score.num_bars:
    length = float(rng.choice(durations, p=weights))
    bar, on_downbeat = int(time // 4), time % 4 == 0
    if on_downbeat:  # move to the nearest tone of this bar's chord
      tones = [i for i, d in enumerate(degrees) if (d - score.chord(bar)) % 7 in (0, 2, 4)]
      position = min(tones, key=lambda i: (abs(i - position), i))
    else:
      position = int(np.clip(position + rng.choice([-2, -1, 1, 2, 0]), 0, len(degrees) - 1))
    if on_downbeat or rng.random() > 0.1:  # occasional rests
      notes.append(Note(instrument, time * score.beat, score.pitch(degrees[position], low), 0.9 * length * score.beat,
                        float(rng.uniform(0.7, 0.9))))
    time += length
  return notes


def compose(arrangement: Arrangement, duration: float, rng: np.random.Generator) -> dict[str, list[Note]]:
  """The notes of each instrument of `arrangement` ('drums' holds the kit's hits), over `duration` seconds."""
  score = _Score(arrangement, duration)
  parts = {}
  for instrument, role in arrangement.parts:
    if role == 'drums':
      notes = _drums(score, rng)
    elif role == 'bass':
      notes = _bass(score, rng)
    elif role in ('chords', 'pad'):
      notes = _chords(score, rng, instrument)
    elif role == 'melody':
      notes = _melody(score, rng, instrument)
    elif role == 'ostinato':
      notes = _ostinato(score, rng, instrument)
    elif instrument in ('piano', 'organ'):  # solo: accompaniment low, melody high
      notes = _chords(score, rng, instrument) + _melody(score, rng, instrument)
    elif instrument == 'guitar':
      notes = _chords(score, rng, instrument)
    else:  # solo flute or bass: a melody in its range
      notes = _melody(score, rng, instrument)
    parts[instrument] = [n for n in notes if n.start < duration]
  return parts
