"""Greedy MAGNeT decoding vs audiocraft's `MagnetLMModel.generate` (same random weights and text states): the
token sequences must be identical."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip('torch')
from magnet_jax import decoding  # noqa: E402
from magnet_jax.models.config import MagnetConfig  # noqa: E402
from reference import audiocraft_lm  # noqa: E402

CONFIG = MagnetConfig(dim=32, num_heads=4, num_layers=2, card=32, text_dim=24, segment_duration=1.0)  # T <= 50
DESCRIPTIONS = ['calm piano', 'fast drums']


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  path = tmp_path_factory.mktemp('ckpt') / 'state_dict.bin'
  return audiocraft_lm.released_pair(CONFIG, DESCRIPTIONS, str(path))


@pytest.mark.parametrize('arrangement, length, prompt_length, scoring, max_cfg_coef', [
    ('nonoverlap', 30, 0, 'max', 10.0),
    ('nonoverlap', 31, 7, 'max', 10.0),   # trimmed to 30; the prompt ends inside a span
    ('nonoverlap', 48, 4, 'prod', 3.0),
    ('stride1', 30, 0, 'max', 10.0),
    ('stride1', 31, 7, 'max', 3.0),
])
def test_greedy_codes_equal_audiocraft(models, arrangement, length, prompt_length, scoring, max_cfg_coef):
  model, config, params, cond, cond_mask = models
  config_decoding = decoding.DecodingConfig(span_arrangement=arrangement, span_scoring=scoring, use_sampling=False,
                                            max_cfg_coef=max_cfg_coef)
  prompt = np.random.default_rng(1).integers(0, CONFIG.card, (len(DESCRIPTIONS), CONFIG.n_q, prompt_length))
  expected = model.generate(
      prompt=torch.as_tensor(prompt) if prompt_length else None,
      conditions=[audiocraft_lm.conditioners.ConditioningAttributes(text={'description': d}) for d in DESCRIPTIONS],
      max_gen_len=length, use_sampling=False, temp=config_decoding.temp, top_k=config_decoding.top_k,
      top_p=config_decoding.top_p, max_cfg_coef=max_cfg_coef, min_cfg_coef=config_decoding.min_cfg_coef,
      decoding_steps=list(config_decoding.decoding_steps), span_arrangement=arrangement, span_scoring=scoring,
  ).numpy()
  got = decoding.generate(params, cond, cond_mask, jax.random.key(0), lm_config=config, decoding=config_decoding,
                          length=length, prompt=jnp.asarray(prompt) if prompt_length else None)
  assert got.shape == expected.shape
  np.testing.assert_array_equal(np.asarray(got), expected)
