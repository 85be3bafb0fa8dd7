"""MagnetLM logits vs audiocraft's MagnetLMModel (PyTorch, random weights, released key layout), fp32."""
import dataclasses

import jax
import numpy as np
import pytest

torch = pytest.importorskip('torch')
from magnet_jax.io.audiocraft import load_audiocraft_lm  # noqa: E402
from magnet_jax.models import MagnetLM  # noqa: E402
from magnet_jax.models.config import MagnetConfig  # noqa: E402
from reference import audiocraft_lm  # noqa: E402

TOL = 1e-4  # max abs logit difference, fp32
CONFIG = MagnetConfig(dim=64, num_heads=4, num_layers=2, card=32, text_dim=24, segment_duration=1.0)
DESCRIPTIONS = ['calm piano', 'fast drums', None, None]  # cond rows, then their CFG null rows


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  path = tmp_path_factory.mktemp('ckpt') / 'state_dict.bin'
  model, _, _, cond, cond_mask = audiocraft_lm.released_pair(CONFIG, DESCRIPTIONS, str(path))
  codes = np.random.default_rng(0).integers(0, CONFIG.card + 1, size=(len(DESCRIPTIONS), CONFIG.n_q, 36))  # + MASK
  return model, path, codes, cond, cond_mask


def _torch_logits(model, codes, level):
  with torch.no_grad():
    tensors = audiocraft_lm.condition_tensors(model, DESCRIPTIONS)
    return model(torch.as_tensor(codes), [], tensors, stage=level).numpy()


@pytest.mark.parametrize('scan_layers', [True, False])
def test_logits_match_audiocraft_every_level(reference, scan_layers):
  model, path, codes, cond, cond_mask = reference
  config, params = load_audiocraft_lm(path, scan_layers=scan_layers)
  assert dataclasses.replace(config, scan_layers=True) == CONFIG
  apply = jax.jit(MagnetLM(config).apply)
  for level in range(CONFIG.n_q):
    expected = _torch_logits(model, codes, level)
    got = np.asarray(apply({'params': params}, codes, cond, cond_mask, level=level))
    assert got.shape == expected.shape == (4, CONFIG.n_q, 36, CONFIG.card)
    err = np.abs(got - expected).max()
    assert err <= TOL, f'level {level}: max abs logit diff {err:.2e} > {TOL}'


def test_traced_level_and_level_logits_match(reference):
  """A traced level (as inside the decoder's fori_loop) selects the same mask; level_logits == one head."""
  model, path, codes, cond, cond_mask = reference
  config, params = load_audiocraft_lm(path)
  lm = MagnetLM(config)
  level_logits = jax.jit(lambda p, s: lm.apply({'params': p}, codes, cond, cond_mask, s, method=MagnetLM.level_logits))
  for level in range(CONFIG.n_q):
    expected = _torch_logits(model, codes, level)[:, level]
    got = np.asarray(level_logits(params, np.int32(level)))
    assert np.abs(got - expected).max() <= TOL


def test_bucketed_text_padding_does_not_change_logits(reference):
  """Extra text padding past the batch's longest description (bucketing) is masked out exactly."""
  _, path, codes, cond, cond_mask = reference
  config, params = load_audiocraft_lm(path)
  apply = jax.jit(MagnetLM(config).apply)
  pad = ((0, 0), (0, 7), (0, 0))
  base = apply({'params': params}, codes, cond, cond_mask, level=1)
  padded = apply({'params': params}, codes, np.pad(cond, pad), np.pad(cond_mask, pad[:2]), level=1)
  np.testing.assert_allclose(np.asarray(padded), np.asarray(base), atol=1e-6)
