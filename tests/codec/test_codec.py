"""magnet_jax.codec against transformers' and audiocraft's EnCodec (tiny random models saved in released layouts)."""
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy
import torch
from omegaconf import OmegaConf
from transformers import EncodecConfig
from transformers import EncodecModel as HFEncodecModel

from magnet_jax.codec import CodecConfig, EncodecModel, convert, decode, encode, init
from magnet_jax.io.errors import CheckpointError
from reference.codec import audiocraft_xp_cfg, save_audiocraft_encodec, save_transformers_encodec
from reference.stubs import import_audiocraft
from tests.helpers import REPO_ROOT

# audiocraft builds its convolutions with the deprecated torch.nn.utils.weight_norm (the released key names).
pytestmark = pytest.mark.filterwarnings('ignore:.*torch.nn.utils.weight_norm.*:FutureWarning')

ATOL = 1e-4  # fp32 decoded audio / latent max abs difference

# transformers EncodecConfig kwargs. Frame rate 1000 Hz x 4 bits = 4 kbps per codebook: the largest target
# bandwidth gives n_q (16.0 -> 4, 12.0 -> 3).
_TINY_HF = dict(num_filters=4, hidden_size=8, codebook_size=16)
HF_CASES = {
    # facebook/encodec_32khz shape: reflect padding, identity shortcut, 2 LSTM layers.
    'hf_32khz_style': dict(_TINY_HF, sampling_rate=8000, upsampling_ratios=[4, 2], target_bandwidths=[8.0, 16.0],
                           num_lstm_layers=2, use_causal_conv=False, pad_mode='reflect', use_conv_shortcut=False),
    # causal stereo, odd stride, conv shortcut, two residual blocks, trimming split left/right.
    'hf_causal_stereo': dict(_TINY_HF, sampling_rate=6000, upsampling_ratios=[3, 2], target_bandwidths=[12.0],
                             audio_channels=2, num_residual_layers=2, num_lstm_layers=1, use_causal_conv=True,
                             trim_right_ratio=0.5, pad_mode='constant', use_conv_shortcut=True),
}
_TINY_AC = dict(n_filters=4, dimension=8, rvq={'n_q': 4, 'bins': 16, 'kmeans_iters': 2})
AC_CASES = {
    # encodec_large_nq4_s320 shape (audio-MAGNeT, 16 kHz): constant padding, 2 LSTM layers, odd stride.
    'ac_16khz_style': audiocraft_xp_cfg(16000, ratios=[5, 2], **_TINY_AC),
    # reflect padding, conv shortcut, two residual blocks, one LSTM layer.
    'ac_32khz_style': audiocraft_xp_cfg(32000, ratios=[4, 2], pad_mode='reflect', true_skip=False,
                                       n_residual_layers=2, lstm=1, **_TINY_AC),
}


class Reference(NamedTuple):
  torch_encoder: torch.nn.Module  # audio [B, C, N] -> latent [B, D, T]
  torch_encode: Any  # audio [B, C, N] -> codes [B, K, T]
  torch_decode: Any  # codes [B, K, T] -> audio [B, C, T * hop]
  params: Any
  config: CodecConfig


@pytest.fixture(scope='module', params=[*HF_CASES, *AC_CASES])
def reference(request, tmp_path_factory) -> Reference:
  name = request.param
  folder = tmp_path_factory.mktemp(name)
  if name in HF_CASES:
    model = save_transformers_encodec(folder, **HF_CASES[name])
    bandwidth = HF_CASES[name]['target_bandwidths'][-1]
    config, params = convert.load_transformers(folder)
    return Reference(model.encoder, lambda x: model.encode(x, bandwidth=bandwidth).audio_codes[0],
                     lambda codes: model.decode(codes[None], [None]).audio_values, params, config)
  path = str(folder / 'compression_state_dict.bin')
  model = save_audiocraft_encodec(path, AC_CASES[name])
  config, params = convert.load_audiocraft(path)
  return Reference(model.encoder, lambda x: model.encode(x)[0], model.decode, params, config)


@pytest.fixture(scope='module')
def hf_folder(tmp_path_factory) -> str:
  folder = tmp_path_factory.mktemp('hf_errors')
  save_transformers_encodec(folder, **HF_CASES['hf_32khz_style'])
  return str(folder)


@functools.partial(jax.jit, static_argnums=0)
def _codec_outputs(config, params, audio, codes):
  """One program for the training forward's latent, `encode`, and `decode` nested in it (a single compile)."""
  latent = EncodecModel(config).apply({'params': params}, audio).latent
  return latent, encode(params, audio, config), decode(params, codes, config)


# N = whole_frames * hop + extra samples; (1, 1) gives T = 2 frames, shorter than the reflect padding.
@pytest.mark.parametrize('whole_frames, extra', [(5, 3), (1, 1)])
def test_parity(reference: Reference, whole_frames: int, extra: int):
  config = reference.config
  num_samples = whole_frames * config.hop_length + extra
  audio = torch.randn(2, config.channels, num_samples, generator=torch.Generator().manual_seed(num_samples))
  with torch.no_grad():
    latent = reference.torch_encoder(audio).numpy().transpose(0, 2, 1)
    codes = reference.torch_encode(audio).numpy()
    audio_out = reference.torch_decode(torch.from_numpy(codes)).numpy()
  assert codes.shape == (2, config.n_q, config.num_frames(num_samples))
  assert len(np.unique(codes)) > 1, 'degenerate reference: all codes equal'

  jax_latent, jax_codes, jax_audio = _codec_outputs(config, reference.params, audio.numpy(), codes)
  np.testing.assert_allclose(jax_latent, latent, rtol=0, atol=ATOL)
  assert jax_codes.dtype == jnp.int32
  np.testing.assert_array_equal(jax_codes, codes)
  assert jax_audio.dtype == jnp.float32 and jax_audio.shape == audio_out.shape
  np.testing.assert_allclose(jax_audio, audio_out, rtol=0, atol=ATOL)


def test_training_forward_is_differentiable():
  config = CodecConfig(sample_rate=8000, ratios=(2,), n_filters=4, dimension=8, n_q=2, bins=16, lstm=1)
  params = init(jax.random.key(0), config)
  audio = jax.random.normal(jax.random.key(1), (2, 1, 9))

  def loss(params):
    out = EncodecModel(config).apply({'params': params}, audio)
    return jnp.mean((out.audio - audio)**2), out

  grads, out = jax.jit(jax.grad(loss, has_aux=True))(params)
  assert out.audio.shape == audio.shape and out.latent.shape == out.quantized.shape == (2, 5, 8)
  # The straight-through estimator leaves the forward value equal to decode(encode(audio)).
  np.testing.assert_allclose(out.audio, decode(params, out.codes, config)[..., :9], rtol=0, atol=1e-5)
  # The encoder learns through the straight-through estimator; codebooks get no reconstruction gradient.
  assert float(jnp.abs(grads['encoder']['conv_0']['kernel']).max()) > 0
  assert float(jnp.abs(grads['encoder']['lstm_4']['w_hh_l0']).max()) > 0
  assert float(jnp.abs(grads['decoder']['conv_0']['kernel']).max()) > 0
  assert float(jnp.abs(grads['quantizer']['codebooks']).max()) == 0


def test_released_configs():
  hf_32khz = EncodecConfig(
      audio_channels=1, sampling_rate=32000, upsampling_ratios=[8, 5, 4, 4], num_filters=64, hidden_size=128,
      codebook_size=2048, codebook_dim=128, target_bandwidths=[2.2], num_lstm_layers=2, num_residual_layers=1,
      use_causal_conv=False, pad_mode='reflect', use_conv_shortcut=False, normalize=False)
  assert convert.config_from_transformers(hf_32khz.to_dict()) == CodecConfig.encodec_32khz()
  s320 = audiocraft_xp_cfg(16000, n_filters=64, rvq={'bins': 2048, 'n_q': 4})  # encodec_large_nq4_s320.yaml
  assert convert.config_from_audiocraft(OmegaConf.to_yaml(OmegaConf.create(s320))) == CodecConfig.encodec_16khz()
  for config in (CodecConfig.encodec_32khz(), CodecConfig.encodec_16khz()):
    assert config.frame_rate == 50.0 and (config.n_q, config.bins) == (4, 2048)
  assert (CodecConfig.encodec_32khz().hop_length, CodecConfig.encodec_16khz().hop_length) == (640, 320)


def test_full_size_layouts():
  """The released codecs' state dicts (shapes from meta-device torch models) convert without missing keys."""
  with torch.device('meta'):
    hf = HFEncodecModel(EncodecConfig(
        sampling_rate=32000, upsampling_ratios=[8, 5, 4, 4], num_filters=64, codebook_size=2048,
        target_bandwidths=[2.2], use_causal_conv=False, use_conv_shortcut=False))
  import_audiocraft()
  from audiocraft.models import builders

  s320 = audiocraft_xp_cfg(16000, n_filters=64, rvq={'bins': 2048, 'n_q': 4})
  with torch.device('meta'):
    ac = builders.get_compression_model(OmegaConf.create({**s320, 'device': 'meta'}))
  for model, layout, config in ((hf, convert.TRANSFORMERS, CodecConfig.encodec_32khz()),
                                (ac, convert.AUDIOCRAFT, CodecConfig.encodec_16khz())):
    state_dict = {k: np.broadcast_to(np.float32(1), v.shape) for k, v in model.state_dict().items()}
    params = convert.convert_state_dict(state_dict, config, layout, 'meta')
    assert params['quantizer']['codebooks'].shape == (4, 2048, 128)


def test_pytorch_bin_with_weight_g_spelling(hf_folder, tmp_path):
  """pytorch_model.bin with the hub's `weight_g` / `weight_v` names loads like the safetensors file."""
  state_dict = safetensors.numpy.load_file(os.path.join(hf_folder, 'model.safetensors'))
  renamed = {k.replace('parametrizations.weight.original0', 'weight_g')
              .replace('parametrizations.weight.original1', 'weight_v'): torch.from_numpy(v)
             for k, v in state_dict.items()}
  assert any(k.endswith('weight_g') for k in renamed)
  torch.save(renamed, tmp_path / 'pytorch_model.bin')
  shutil.copy(os.path.join(hf_folder, 'config.json'), tmp_path)
  expected_config, expected = convert.load_transformers(hf_folder)
  config, params = convert.load_transformers(tmp_path)
  assert config == expected_config
  jax.tree.map(np.testing.assert_array_equal, params, expected)


def test_pointer_checkpoint(hf_folder, tmp_path):
  path = tmp_path / 'compression_state_dict.bin'
  torch.save({'pretrained': 'facebook/encodec_32khz', 'exported': True, 'version': '1.3.0'}, path)
  with pytest.raises(CheckpointError, match="'facebook/encodec_32khz'.*pretrained_dir"):
    convert.load_audiocraft(path)
  config, params = convert.load_audiocraft(path, pretrained_dir=hf_folder)
  expected_config, expected = convert.load_transformers(hf_folder)
  assert config == expected_config
  jax.tree.map(np.testing.assert_array_equal, params, expected)


def _edit_safetensors(folder, edit):
  path = os.path.join(folder, 'model.safetensors')
  state_dict = safetensors.numpy.load_file(path)
  edit(state_dict)
  safetensors.numpy.save_file(state_dict, path)


def _edit_config(folder, **changes):
  path = os.path.join(folder, 'config.json')
  with open(path) as f:
    config = json.load(f)
  with open(path, 'w') as f:
    json.dump({**config, **changes}, f)


def _truncate(path):
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])


BAD_FOLDERS = {
    'no config.json': (lambda d: os.remove(os.path.join(d, 'config.json')), r'config\.json: not found'),
    'no weights': (lambda d: os.remove(os.path.join(d, 'model.safetensors')), 'no model.safetensors'),
    'truncated safetensors': (lambda d: _truncate(os.path.join(d, 'model.safetensors')), 'truncated'),
    'missing key': (lambda d: _edit_safetensors(d, lambda sd: sd.pop('decoder.layers.1.lstm.bias_hh_l1')),
                    r'model\.safetensors: missing key decoder\.layers\.1\.lstm\.bias_hh_l1'),
    'unexpected key': (lambda d: _edit_safetensors(d, lambda sd: sd.update(extra=np.zeros(1, np.float32))),
                       r'1 unexpected keys.*extra'),
    'shape mismatch': (lambda d: _edit_config(d, hidden_size=16, codebook_dim=16),
                       r'model\.safetensors: \S+conv\S+: shape .* does not match the config'),
    'unsupported norm': (lambda d: _edit_config(d, norm_type='time_group_norm'), 'time_group_norm'),
}


@pytest.mark.parametrize('corruption', BAD_FOLDERS)
def test_bad_transformers_folder(hf_folder, tmp_path, corruption):
  folder = str(tmp_path / 'model')
  shutil.copytree(hf_folder, folder)
  corrupt, message = BAD_FOLDERS[corruption]
  corrupt(folder)
  with pytest.raises(CheckpointError, match=message):
    convert.load_transformers(folder)


def test_bad_audiocraft_files(tmp_path):
  xp_cfg = AC_CASES['ac_16khz_style']
  path = str(tmp_path / 'compression_state_dict.bin')
  save_audiocraft_encodec(path, xp_cfg, kmeans=False)
  with pytest.raises(CheckpointError, match=r'quantizer\.vq\.layers\.0\._codebook\.inited is false'):
    convert.load_audiocraft(path)
  _truncate(path)
  with pytest.raises(CheckpointError, match='compression_state_dict.bin'):
    convert.load_audiocraft(path)
  with pytest.raises(CheckpointError, match='not found'):
    convert.load_audiocraft(tmp_path / 'missing.bin')
  torch.save({'best_state': {}}, path)
  with pytest.raises(CheckpointError, match="missing key 'xp.cfg'"):
    convert.load_audiocraft(path)
  renorm = OmegaConf.to_yaml(OmegaConf.create({**xp_cfg, 'encodec': {**xp_cfg['encodec'], 'renormalize': True}}))
  with pytest.raises(CheckpointError, match='encodec.renormalize'):
    convert.config_from_audiocraft(renorm)
  split = {**xp_cfg, 'seanet': {**xp_cfg['seanet'], 'encoder': {'n_filters': 8}}}
  with pytest.raises(CheckpointError, match='seanet.n_filters differs between encoder and decoder'):
    convert.config_from_audiocraft(OmegaConf.to_yaml(OmegaConf.create(split)))


def test_config_validation():
  with pytest.raises(ValueError, match='pad_mode'):
    CodecConfig(pad_mode='replicate')
  with pytest.raises(ValueError, match='trim_right_ratio'):
    CodecConfig(trim_right_ratio=0.5)
  config = CodecConfig(ratios=[2, 3])
  assert config.ratios == (2, 3) and hash(config) == hash(dataclasses.replace(config))


def test_convert_imports_no_torch():
  code = 'import sys, magnet_jax.codec; assert "torch" not in sys.modules, "torch imported"'
  subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO_ROOT,
                 env={**os.environ, 'JAX_PLATFORMS': 'cpu'})

