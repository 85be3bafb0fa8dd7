"""The server's batches on 8 simulated CPU devices (a subprocess): split over `data`, and with tensor-parallel
parameters, they give what one device gives."""
import pytest


@pytest.fixture(scope='module')
def multidevice(on_8_devices):
  """tests/serving/multidevice_generate.py's results in the 8-device run."""
  return on_8_devices['serve']


def test_data_parallel_gives_the_one_device_audio(multidevice):
  assert multidevice['data8']['identical'], multidevice['data8']
  assert not multidevice['data8']['model_sharded']


def test_tensor_parallel_gives_the_one_device_audio(multidevice):
  assert multidevice['data2_model4']['model_sharded']
  assert multidevice['data2_model4']['identical'], multidevice['data2_model4']
