"""The server's batches on 8 simulated CPU devices (a subprocess): split over `data`, and with tensor-parallel
parameters, they give what one device gives."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT


@pytest.fixture(scope='module')
def multidevice():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8', JAX_PLATFORMS='cpu',
             PYTHONPATH=REPO_ROOT)  # this checkout's package, whatever is installed
  out = subprocess.run([sys.executable, 'tests/serving/multidevice_generate.py'], env=env, capture_output=True,
                       text=True, timeout=900, cwd=REPO_ROOT)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_data_parallel_gives_the_one_device_audio(multidevice):
  assert multidevice['data8']['identical'], multidevice['data8']
  assert not multidevice['data8']['model_sharded']


def test_tensor_parallel_gives_the_one_device_audio(multidevice):
  assert multidevice['data2_model4']['model_sharded']
  assert multidevice['data2_model4']['identical'], multidevice['data2_model4']
