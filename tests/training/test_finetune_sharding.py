"""LoRA training and validation on 1 device vs 8 simulated CPU devices (data parallel, FSDP, tensor parallel):
the same losses, adapters and validation numbers (tests/training/multidevice_finetune.py in a subprocess)."""
import json
import os
import subprocess
import sys

import pytest

TOL = 1e-5  # fp32: only the order of cross-device reductions differs


@pytest.fixture(scope='module')
def multidevice():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8', JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, 'tests/training/multidevice_finetune.py'], env=env, capture_output=True,
                       text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('name', ['data8', 'fsdp8', 'data2_model4'])
def test_lora_and_validation_match_one_device(multidevice, name):
  single, other = multidevice['single'], multidevice[name]
  for a, b in zip(single['losses'], other['losses'], strict=True):
    assert abs(a - b) <= TOL * max(1.0, abs(a)), (single['losses'], other['losses'])
  assert other['adapter_diff'] <= 1e-5
  assert single['valid'].keys() == other['valid'].keys()
  for key, value in single['valid'].items():
    assert abs(value - other['valid'][key]) <= TOL, key
  assert single['losses'][-1] != single['losses'][0]


def test_adapters_are_sharded_like_their_kernels(multidevice):
  # the MLP input adapter a is [L, D, r]: FSDP splits D over `data` as it does the kernel, DP replicates it
  assert multidevice['fsdp8']['adapter_sharding'] == [None, 'data', None]
  assert multidevice['data8']['adapter_sharding'] in ([], [None, None, None])
