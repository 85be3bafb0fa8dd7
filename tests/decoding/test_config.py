"""DecodingConfig's surface from its field metadata: bounds on every field, one overrides parser, one-line errors."""
import dataclasses
import math

import pytest

from magnet_jax.decoding.config import FIELDS, DecodingConfig, check_overrides, help_text, parse_overrides


def test_every_field_has_help_and_bounds():
  for name, field in FIELDS.items():
    assert field.metadata['help'].strip(), name
    if field.type is str:
      assert getattr(DecodingConfig(), name) in field.metadata['choices'], name
    elif field.type is not bool:  # numbers and decoding_steps' entries: a finite range holding the default
      low, high = field.metadata['min'], field.metadata['max']
      assert math.isfinite(low) and math.isfinite(high) and low < high, name
      default = getattr(DecodingConfig(), name)
      assert all(low <= v <= high for v in (default if isinstance(default, tuple) else (default,))), name
    assert help_text(name).startswith(field.metadata['help']), name


def test_parse_overrides_checks_names_and_values():
  assert parse_overrides(['temp=2', 'decoding_steps=20,10,10,10', 'top-p=0.5', 'anneal_temp=false',
                          'span_scoring=prod', 'top_k=5']) == {
      'temp': 2.0, 'decoding_steps': (20, 10, 10, 10), 'top_p': 0.5, 'anneal_temp': False, 'span_scoring': 'prod',
      'top_k': 5}
  assert parse_overrides(['decoding_steps=[4,2,2,2]']) == {'decoding_steps': (4, 2, 2, 2)}
  assert DecodingConfig(**parse_overrides(['max_cfg_coef=100', 'min_cfg_coef=0'])).max_cfg_coef == 100.0
  cases = [('tmp=1', "unknown decoding setting 'tmp'; known: decoding_steps, temp"),
           ('temp', "decoding override 'temp' is not NAME=VALUE"),
           ('temp=abc', r"decoding.temp must be a number in \[0, 100\], got 'abc'"),
           ('temp=nan', r'decoding.temp must be a finite number in \[0, 100\], got nan'),
           ('temp=100.5', r'decoding.temp must be a number in \[0, 100\], got 100.5'),
           ('max_cfg_coef=1e400', r'decoding.max_cfg_coef must be a finite number in \[0, 100\], got inf'),
           ('top_p=-0.1', r'decoding.top_p must be a number in \[0, 1\]'),
           ('top_k=-1', r'decoding.top_k must be an integer in \[0, 65536\], got -1'),
           ('top_k=2.5', "decoding.top_k must be an integer"),
           ('decoding_steps=20,0', r'decoding_steps must be one integer per level, each in \[1, 1000\], got \(20, 0\)'),
           ('decoding_steps=1001', r'each in \[1, 1000\]'), ('decoding_steps=', 'decoding_steps must be'),
           ('span_arrangement=overlap', "must be one of 'nonoverlap', 'stride1', got 'overlap'"),
           ('use_sampling=maybe', 'use_sampling must be true or false')]
  for item, message in cases:
    with pytest.raises(ValueError, match=message) as error:
      parse_overrides([item])
    assert '\n' not in str(error.value), item


def test_keyword_overrides_are_checked_like_parsed_ones():
  assert check_overrides({'temp': 1, 'decoding_steps': [2, 2]}) == {'temp': 1.0, 'decoding_steps': (2, 2)}
  with pytest.raises(ValueError, match="unknown decoding setting 'temperature'"):
    check_overrides({'temperature': 1.0})
  with pytest.raises(ValueError, match='decoding.rescorer_cfg_coef must be a number'):
    dataclasses.replace(DecodingConfig(), rescorer_cfg_coef=-1.0)
