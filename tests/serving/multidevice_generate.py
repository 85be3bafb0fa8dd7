"""Part of the 8-device run (tests/multidevice.py, checked by tests/serving/test_devices.py): the server's batch on
one device, split over data=8, and over data=2 x model=4 (tensor-parallel parameters)."""
import json

import jax
import numpy as np

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import random_pipeline
from magnet_jax.generation.request import Request
from magnet_jax.serving import engine

PROMPTS = ['calm piano', 'fast drums', 'soft synth']


def run(preset: str | None, model: int = 1):
  pipeline = random_pipeline.build(decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)), text_pad_to=64)
  devices = None if preset is None else engine.place(pipeline, preset, model)
  decoding = pipeline.decoding_with()
  works = [engine.Work(Request(text, 7 + i, duration=0.36), decoding, 4) for i, text in enumerate(PROMPTS)]
  audio = np.stack([samples for samples, _ in engine.generate(pipeline, works, devices)])
  specs = {str(getattr(leaf.sharding, 'spec', '')) for leaf in jax.tree.leaves(pipeline.lm_params)}
  return audio, sorted(specs)


def main():
  assert jax.local_device_count() == 8, jax.local_devices()
  single, _ = run(None)
  result = {}
  for name, preset, model in [('data8', 'data_parallel', 1), ('data2_model4', 'tensor_parallel', 4)]:
    audio, specs = run(preset, model)
    result[name] = {'identical': bool(np.array_equal(audio, single)), 'max_diff': float(np.abs(audio - single).max()),
                    'model_sharded': any('model' in spec for spec in specs)}
  return result


if __name__ == '__main__':
  print(json.dumps(main()))
