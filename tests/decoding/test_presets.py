"""Presets set what they are about (steps, span arrangement, rescoring) and keep a checkpoint's tuned sampling; every
override is relative to the checkpoint's decoding."""
import dataclasses

import pytest

from magnet_jax.decoding import DecodingConfig, presets
from magnet_jax.generation import pretrained

TUNED = DecodingConfig(decoding_steps=(3, 3, 2, 2), temp=4.0, max_cfg_coef=3.0, min_cfg_coef=1.5, top_p=0.8)


@pytest.fixture(scope='module')
def pipeline(tiny_pipeline_folder):
  return dataclasses.replace(pretrained.load(tiny_pipeline_folder), decoding=TUNED)


@pytest.mark.parametrize('name', sorted(presets.PRESETS))
def test_a_preset_keeps_the_checkpoints_temperature_and_cfg(pipeline, name):
  decoding = pipeline.decoding_with(preset=name)
  assert (decoding.temp, decoding.max_cfg_coef, decoding.min_cfg_coef, decoding.top_p) == (4.0, 3.0, 1.5, 0.8)
  assert decoding.decoding_steps == presets.PRESETS[name]['decoding_steps']
  assert decoding.span_arrangement == presets.PRESETS[name]['span_arrangement']
  assert decoding.rescorer_weight == 0.0  # no rescorer loaded: the quality preset's rescoring is dropped


def test_presets_name_only_steps_spans_and_rescoring():
  for values in presets.PRESETS.values():
    assert set(values) <= {'decoding_steps', 'span_arrangement', 'rescorer_weight'}


def test_an_override_changes_one_value_of_the_checkpoints_decoding(pipeline):
  assert pipeline.decoding_with(temp=2.0) == dataclasses.replace(TUNED, temp=2.0)
  decoding = pipeline.decoding_with(preset='fast', temp=2.0)  # the override wins over the preset and the checkpoint
  assert (decoding.temp, decoding.max_cfg_coef, decoding.decoding_steps) == (2.0, 3.0, (4, 2, 2, 2))


def test_an_unknown_preset_is_one_error(pipeline):
  with pytest.raises(ValueError, match="unknown preset 'fastest'"):
    pipeline.decoding_with(preset='fastest')
