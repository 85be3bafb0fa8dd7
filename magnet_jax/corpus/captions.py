"""Natural, varied captions built from a clip's arrangement; every statement in one is true of the audio.

A caption always names every instrument (drums by their pattern or as drums); it may add the tempo (a word that
matches the bpm, the bpm itself, or both), the key, a mood word that matches the mode, and 'no drums'.
"""
import numpy as np

from magnet_jax.corpus.compose import Arrangement

# Tempo classes by bpm: slow < 90 <= moderate < 120 <= fast.
TEMPO_WORDS = {'slow': ('slow', 'slow-paced', 'unhurried'), 'moderate': ('mid-tempo', 'moderate', 'medium-tempo'),
               'fast': ('fast', 'upbeat', 'up-tempo', 'energetic')}
MOOD_WORDS = {'major': ('bright', 'happy', 'cheerful', 'uplifting'), 'minor': ('melancholic', 'dark', 'sad', 'moody')}
INSTRUMENT_WORDS = {
    'drums': ('drums', 'a drum kit', 'percussion'),
    'bass': ('bass', 'synth bass', 'a bass line'),
    'piano': ('piano', 'acoustic piano', 'grand piano'),
    'guitar': ('acoustic guitar', 'plucked guitar', 'guitar'),
    'pad': ('synth pad', 'ambient pad', 'warm pad'),
    'flute': ('flute', 'soft flute'),
    'organ': ('organ', 'electric organ'),
    'marimba': ('marimba', 'wooden marimba'),
}
# Adjectives for each drum pattern, as in '<word> drum groove'.
PATTERN_WORDS = {'four_on_the_floor': ('four-on-the-floor', 'dance', 'house'), 'rock': ('rock', 'backbeat'),
                 'breakbeat': ('breakbeat', 'broken-beat'), 'hip_hop': ('hip-hop', 'boom-bap')}


def tempo_class(bpm: int) -> str:
  """'slow', 'moderate' or 'fast'."""
  return 'slow' if bpm < 90 else 'moderate' if bpm < 120 else 'fast'


def _pick(rng: np.random.Generator, options) -> str:
  return str(options[rng.integers(len(options))])


def _and(items: list[str]) -> str:
  """'a', 'a and b', 'a, b and c'."""
  return items[0] if len(items) == 1 else ', '.join(items[:-1]) + ' and ' + items[-1]


def _subject(a: Arrangement, rng: np.random.Generator) -> str:
  """The noun phrase naming what plays, e.g. 'breakbeat drum groove with bass' or 'solo piano'."""
  names = {instrument: _pick(rng, INSTRUMENT_WORDS[instrument]) for instrument in a.instruments}
  beat = _pick(rng, PATTERN_WORDS[a.drums] + ('',)) if a.drums != 'none' else ''  # the pattern is optional
  pitched = [i for i in a.instruments if i != 'drums']
  if a.category == 'groove':
    head = _pick(rng, (f'{beat} drum groove', f'{beat} drums', f'{beat} drum beat'))
    return head + (f' with {names["bass"]}' if pitched else _pick(rng, ('', ', drums only')))
  if a.category == 'solo':
    return _pick(rng, (f'solo {names[pitched[0]]}', f'{names[pitched[0]]} solo', f'{names[pitched[0]]} alone'))
  if a.category == 'duo':
    return _pick(rng, (f'{names[pitched[0]]} and drums', f'{names[pitched[0]]} over a {beat} drum beat',
                       f'{names[pitched[0]]} with {names["drums"]}'))
  if a.category == 'band':
    roles = {role: instrument for instrument, role in a.parts}
    if 'melody' in roles and rng.random() < 0.5:
      return (f'{names[roles["melody"]]} melody over {names[roles["chords"]]} chords, {names["bass"]} and '
              f'{beat} drums')
    return _pick(rng, ('band', 'full band', 'ensemble')) + ' with ' + _and([names[i] for i in a.instruments])
  if a.category == 'mallets':
    return _pick(rng, (f'solo {names["marimba"]}', f'{names["marimba"]} ostinato',
                       f'rolling {names["marimba"]} arpeggios'))
  if a.category == 'ambient':
    return f'{names["pad"]} drone' if a.drone else _pick(rng, (f'{names["pad"]} chords', f'sustained {names["pad"]}'))
  raise ValueError(f'unknown category {a.category!r}')


def describe(a: Arrangement, rng: np.random.Generator) -> str:
  """One caption of `a`, wording and optional details drawn from `rng`."""
  subject = _subject(a, rng)
  tempo = _pick(rng, TEMPO_WORDS[tempo_class(a.bpm)])
  tonal = a.instruments != ('drums',)  # a drums-only clip has neither key nor mode
  mood = _pick(rng, MOOD_WORDS[a.mode])
  head = f'{_pick(rng, (tempo, mood, f"{tempo} {mood}", "") if tonal else (tempo, ""))} {subject}'
  details = [f'in {a.key}'] if tonal and rng.random() < 0.75 else []
  if a.category != 'ambient' and rng.random() < 0.7:
    details.append(_pick(rng, (f'at {a.bpm} bpm', f', {a.bpm} bpm', f', {a.bpm} BPM')))
  if a.drums == 'none' and rng.random() < 0.5:
    details.append(', no drums')
  return ' '.join(' '.join([head, *details]).split()).replace(' ,', ',')
