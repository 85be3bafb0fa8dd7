"""The prompt-following scorer of best-of-N: what captions ask, checked on synthetic audio of known statistics."""
import numpy as np
import pytest

from magnet_jax.evaluation import prompt_following
from magnet_jax.generation import best_of

RATE = 16000


def _clicks(per_second: float, seconds: float = 4.0) -> np.ndarray:
  """Decaying noise bursts `per_second` times a second: a drum-like onset train."""
  audio = np.zeros(int(seconds * RATE))
  burst = np.random.default_rng(0).normal(size=800) * np.exp(-np.arange(800) / 120)
  for start in (np.arange(0, seconds, 1 / per_second) * RATE).astype(int):
    audio[start:start + 800] += burst[:len(audio) - start]
  return audio


def _tone(hz: float, seconds: float = 4.0) -> np.ndarray:
  return np.sin(2 * np.pi * hz * np.arange(int(seconds * RATE)) / RATE)


def test_captions_rank_busy_calm_low_and_high_audio():
  assert prompt_following.expectations('fast drum groove with bass at 140 bpm') == {'onsets': 1, 'low': 1}
  assert prompt_following.expectations('slow ambient pad drone, no drums') == {'onsets': -1, 'low': 0}
  assert prompt_following.expectations('soft flute') == {'onsets': 0, 'low': -1}
  audio = np.stack([_clicks(2.0), _clicks(6.0), _tone(220.0)])[:, None]  # [3, 1, N]
  busy = prompt_following.stats_score(['fast drum groove'] * 3, audio, RATE)
  calm = prompt_following.stats_score(['ambient pad drone'] * 3, audio, RATE)
  assert np.argmax(busy) == 1 and np.argmax(calm) == 2
  pitched = np.stack([_tone(80.0), _tone(2000.0)])[:, None]
  assert np.argmax(prompt_following.stats_score(['solo bass'] * 2, pitched, RATE)) == 0
  assert np.argmax(prompt_following.stats_score(['solo flute'] * 2, pitched, RATE)) == 1
  np.testing.assert_array_equal(prompt_following.stats_score(['jazz'] * 2, pitched, RATE), [0.0, 0.0])


def test_scorers_are_pluggable_by_name():
  assert best_of.scorer('stats') is prompt_following.stats_score  # registered by importing prompt_following
  best_of.register('loudest', lambda _: lambda texts, audio, rate: np.abs(audio).max(axis=(1, 2)))
  try:
    scorer = best_of.scorer('loudest')
    assert np.argmax(scorer(['x'] * 2, np.stack([_tone(100) * 0.1, _tone(100)])[:, None], RATE)) == 1
  finally:
    del best_of.SCORERS['loudest']
  with pytest.raises(ValueError, match="unknown best-of scorer 'loudest'"):
    best_of.scorer('loudest')
  with pytest.raises(ValueError, match='the clap scorer needs a local CLAP model folder'):
    best_of.scorer('clap')
