"""audiocraft LM checkpoint loading: torch-free reading, and one clear error per bad input."""
import dataclasses
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip('torch')
from magnet_jax.io.audiocraft import load_audiocraft_lm, params_from_torch_state_dict  # noqa: E402
from magnet_jax.io.errors import CheckpointError  # noqa: E402
from magnet_jax.models.config import MagnetConfig  # noqa: E402
from reference import audiocraft_lm  # noqa: E402
from tests.helpers import without  # noqa: E402

CONFIG = MagnetConfig(dim=32, num_heads=2, num_layers=2, card=16, text_dim=8, segment_duration=1.0)


@pytest.fixture(scope='module')
def released(tmp_path_factory):
  model = audiocraft_lm.build_magnet_lm(CONFIG, {'x': np.ones((2, 8))}, seed=1)
  path = tmp_path_factory.mktemp('released') / 'state_dict.bin'
  audiocraft_lm.save_released(model, CONFIG, str(path))
  return model, path


def test_every_tensor_is_mapped(released):
  model, path = released
  config, params = load_audiocraft_lm(path.parent)  # a folder works too
  assert config == CONFIG
  state = model.state_dict()
  n_params = sum(int(np.prod(v.shape)) for v in state.values())
  import jax
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)) == n_params
  np.testing.assert_array_equal(params['heads']['kernel'][2], state['linears.2.weight'].numpy().T)
  q = state['transformer.layers.1.cross_attention.in_proj_weight'].numpy()[:32]
  np.testing.assert_array_equal(params['transformer']['layers']['cross_attention']['query'][1].reshape(32, 32), q.T)


def test_loading_needs_no_torch(released):
  _, path = released
  code = (without('torch') +
          "from magnet_jax.io.audiocraft import load_audiocraft_lm\n"
          f"config, params = load_audiocraft_lm({str(path)!r}); print(config.dim)")
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0 and out.stdout.strip() == '32', out.stderr[-2000:]


def _state(released):
  return {k: v.clone() for k, v in released[0].state_dict().items()}


@pytest.mark.parametrize('mutate,config,message', [
    (lambda sd: sd.pop('emb.3.weight'), CONFIG, 'has 3 codebook embeddings (emb.*) but the config has n_q=4'),
    (lambda sd: None, dataclasses.replace(CONFIG, card=2048), 'card) is 16'),
    (lambda sd: sd.pop('transformer.layers.1.norm2.bias'), CONFIG, "missing key 'transformer.layers.1.norm2.bias'"),
    (lambda sd: sd.update({'transformer.layers.0.extra': torch.zeros(1)}), CONFIG, "unknown key 'transformer.layers.0"),
    (lambda sd: sd.update({'out_norm.weight': torch.zeros(5)}), CONFIG, 'out_norm.weight: shape (5,)'),
    (lambda sd: None, dataclasses.replace(CONFIG, num_layers=3), "missing key 'transformer.layers.2."),
])
def test_mismatches_are_one_clear_error(released, mutate, config, message):
  sd = _state(released)
  mutate(sd)
  with pytest.raises(CheckpointError) as error:
    params_from_torch_state_dict(sd, config)
  assert message in str(error.value) and '\n' not in str(error.value)


def test_bad_files(tmp_path, released):
  with pytest.raises(CheckpointError, match='checkpoint file not found'):
    load_audiocraft_lm(tmp_path / 'nope.bin')
  truncated = tmp_path / 'truncated.bin'
  truncated.write_bytes(released[1].read_bytes()[:5000])
  with pytest.raises(CheckpointError, match='truncated'):
    load_audiocraft_lm(truncated)
  evil = tmp_path / 'evil.bin'
  torch.save({'xp.cfg': 'a: 1', 'best_state': {'x': torch.zeros(1)}, 'hook': print}, evil)
  with pytest.raises(CheckpointError, match='refusing to unpickle .*print'):
    load_audiocraft_lm(evil)
  plain = tmp_path / 'plain.bin'
  torch.save({'weights': torch.zeros(1)}, plain)
  with pytest.raises(CheckpointError, match="exported layout"):
    load_audiocraft_lm(plain)
