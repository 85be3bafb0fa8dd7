"""The sharded train step gives the same losses and params on 1 device and on 8 simulated CPU devices
(data=8, data=2 x model=4 tensor parallel, FSDP), LoRA training and validation too, and the sharding helpers
behave."""

import jax
import pytest
from jax.sharding import PartitionSpec

from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.params import logical_axes
from magnet_jax.parallel.sharding import make_mesh, param_shardings, rules_for

TOL = 1e-5  # fp32: only the order of cross-device reductions differs


@pytest.fixture(scope='module')
def multidevice(on_8_devices):
  """Training on the meshes (tests/training/multidevice_losses.py in the 8-device run)."""
  return on_8_devices['train']


@pytest.fixture(scope='module')
def multidevice_lora(on_8_devices):
  """LoRA training and validation on the same meshes (tests/training/multidevice_finetune.py)."""
  return on_8_devices['lora']


@pytest.mark.parametrize('name', ['data8', 'data2_model4', 'fsdp8'])
def test_same_loss_and_params_as_one_device(multidevice, name):
  single, other = multidevice['single']['losses'], multidevice[name]['losses']
  assert len(single) == len(other) == 4
  for a, b in zip(single, other, strict=True):
    assert abs(a - b) <= TOL * max(1.0, abs(a)), (single, other)
  assert multidevice[name]['param_diff'] <= 1e-5
  assert single[-1] < single[0]  # it trained


def test_presets_really_shard(multidevice):
  # mlp.wi is [L, D, F]: tensor parallel splits F over `model`, FSDP splits D over `data`, DP replicates.
  assert multidevice['data2_model4']['mlp_sharding'] == [None, None, 'model']
  assert multidevice['fsdp8']['mlp_sharding'] == [None, 'data', None]
  assert multidevice['data8']['mlp_sharding'] in ([], [None, None, None])


def test_undivisible_dims_stay_replicated():
  config = MagnetConfig(dim=64, num_heads=4, num_layers=2, card=32, text_dim=16)
  mesh = make_mesh({'data': 1, 'model': 1})
  shapes = jax.eval_shape(lambda: {'embedder': {'emb': jax.numpy.zeros((4, 33, 64))}})
  specs = {'embedder': {'emb': logical_axes(config)['embedder']['emb']}}
  sharding = param_shardings(specs, shapes, mesh, rules_for('tensor_parallel'))
  assert sharding['embedder']['emb'].spec == PartitionSpec(None, None, None)


def test_mesh_and_preset_errors():
  with pytest.raises(ValueError, match='needs 4 devices'):
    make_mesh({'data': 4, 'model': 1})
  with pytest.raises(ValueError, match='unknown axes'):
    make_mesh({'batch': 1})
  with pytest.raises(ValueError, match='sharding.preset'):
    rules_for('zero')


@pytest.mark.parametrize('name', ['data8', 'fsdp8', 'data2_model4'])
def test_lora_and_validation_match_one_device(multidevice_lora, name):
  single, other = multidevice_lora['single'], multidevice_lora[name]
  for a, b in zip(single['losses'], other['losses'], strict=True):
    assert abs(a - b) <= TOL * max(1.0, abs(a)), (single['losses'], other['losses'])
  assert other['adapter_diff'] <= 1e-5
  assert single['valid'].keys() == other['valid'].keys()
  for key, value in single['valid'].items():
    assert abs(value - other['valid'][key]) <= TOL, key
  assert single['losses'][-1] != single['losses'][0]


def test_adapters_are_sharded_like_their_kernels(multidevice_lora):
  # the MLP input adapter a is [L, D, r]: FSDP splits D over `data` as it does the kernel, DP replicates it
  assert multidevice_lora['fsdp8']['adapter_sharding'] == [None, 'data', None]
  assert multidevice_lora['data8']['adapter_sharding'] in ([], [None, None, None])
