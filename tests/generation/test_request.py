"""The generation request's rules without a model (one line naming the field), best-of's bounds and candidate
seeds, and the registries of decoding strategies and best-of scorers."""
import numpy as np
import pytest

from magnet_jax.decoding import strategies
from magnet_jax.generation import best_of, request
from magnet_jax.generation.request import Request, Tempo

AUDIO = np.zeros((1, 1600), np.float32)  # 1 s at 1.6 kHz


@pytest.mark.parametrize('fields, message', [
    ({'mode': 'continue'}, "mode must be one of .*'continuation'"),
    ({'mode': 'infill', 'infill': (0.1, 0.2)}, 'mode infill needs audio'),
    ({'audio': AUDIO, 'sample_rate': 1600}, 'mode text takes no audio'),
    ({'infill': (0.1, 0.2)}, 'an infill span .* goes with mode infill'),
    ({'duration': 0.0}, 'duration must be > 0 seconds and at most 10 s, got 0'),
    ({'duration': float('nan')}, 'duration must be > 0 seconds'),
    ({'duration': 11.0}, 'at most 10 s, got 11'),
    ({'overlap': float('inf')}, 'overlap must be a finite number'),
    ({'seed': -1}, 'seeds must be 1 integers in'),
    ({'mode': 'infill', 'audio': AUDIO, 'sample_rate': 1600, 'infill': (0.5, 1.5)}, 'infill 0.5:1.5 is outside'),
    ({'mode': 'infill', 'audio': AUDIO, 'sample_rate': 1600, 'infill': (0.5, 0.6), 'duration': 2.0},
     'duration does not apply to infill'),
    ({'mode': 'loop', 'audio': np.zeros((1, 32000), np.float32), 'sample_rate': 1600}, 'the audio is 20.00 s'),
    ({'mode': 'continuation', 'audio': AUDIO, 'sample_rate': 1600, 'duration': 1.0}, 'must exceed the audio'),
    ({'mode': 'continuation', 'audio': AUDIO * np.nan, 'sample_rate': 1600, 'duration': 2.0}, 'non-finite'),
    ({'mode': 'loop', 'tempo': Tempo(120, 1), 'duration': 2.0}, 'a tempo .* makes a generated loop'),
    ({'mode': 'loop', 'tempo': Tempo(10, 8)}, '8 bars at 10 bpm make a 192 s loop, at most 10 s'),
])
def test_bad_requests_are_one_line_naming_the_field(fields, message):
  with pytest.raises(ValueError, match=message):
    request.check(Request('a', **fields), max_duration=10.0)


def test_good_requests_and_the_default_duration():
  for fields in ({}, {'mode': 'loop', 'tempo': Tempo(120, 1)}, {'mode': 'loop', 'audio': AUDIO, 'sample_rate': 1600},
                 {'mode': 'outpaint', 'audio': AUDIO, 'sample_rate': 1600, 'duration': 2.0}):
    request.check(Request('a', **fields), max_duration=10.0)
  continuation = Request('a', mode='continuation', audio=AUDIO, sample_rate=1600)
  request.check(continuation)  # the model's default duration is not known yet
  with pytest.raises(ValueError, match=r'duration \(0.6 s, the whole output\) must exceed the audio'):
    request.check(continuation, default_duration=0.6)
  assert Request('a', 1, duration=2.0).key == Request('b', 9, duration=2.0).key != Request('a', duration=3.0).key


def test_the_requested_duration_is_the_default_where_none_is_given():
  assert request.requested_duration(Request('a', duration=1.33), 0.6) == 1.33
  assert request.requested_duration(Request('a'), 0.6) == 0.6
  for fields in ({'mode': 'loop', 'tempo': Tempo(120, 1)}, {'mode': 'loop', 'audio': AUDIO, 'sample_rate': 1600},
                 {'mode': 'infill', 'audio': AUDIO, 'sample_rate': 1600, 'infill': (0.1, 0.2)}):
    assert request.requested_duration(Request('a', **fields), 0.6) is None  # the audio or the tempo sets it


def test_best_of_bounds_and_candidate_seeds():
  for count in (0, best_of.MAX_CANDIDATES + 1):
    with pytest.raises(ValueError, match=f'best-of must be between 1 and {best_of.MAX_CANDIDATES} candidates'):
      best_of.check(count, 'stats')
  best_of.check(1, 'not looked up for one candidate')
  with pytest.raises(ValueError, match="unknown best-of scorer 'nope'"):
    best_of.check(2, 'nope')
  rows = best_of.candidates([Request('a', 10), Request('b', 20)], 3)
  assert [(r.description, r.seed) for r in rows] == [('a', 10), ('a', 11), ('a', 12), ('b', 20), ('b', 21), ('b', 22)]
  best_of.register('loudest', lambda _: lambda texts, audio, rate: np.abs(audio).max(axis=(1, 2)))
  try:
    audio = np.stack([np.full((1, 4), v, np.float32) for v in (0.1, 0.3, 0.2, 0.5, 0.4, 0.6)])
    picked, chosen = best_of.choose([Request('a', 10), Request('b', 20)], 3, audio, 'loudest', 1600)
    np.testing.assert_array_equal(picked[:, 0, 0], np.float32([0.3, 0.6]))
    assert [c['seed'] for c in chosen] == [11, 22] and chosen[1]['best_of']['seeds'] == [20, 21, 22]
  finally:
    del best_of.SCORERS['loudest']


def test_decoding_strategies_by_name():
  assert isinstance(strategies.decoder('masked'), strategies.MaskedDecoding)
  hybrid = strategies.decoder('hybrid')
  assert not any(vars(hybrid.capabilities).values()) and all(vars(strategies.MaskedDecoding.capabilities).values())
  with pytest.raises(ValueError, match="unknown decoding strategy 'beam'; known: .*'hybrid', 'masked', 'rescored'"):
    strategies.decoder('beam')
