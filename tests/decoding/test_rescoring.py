"""The autoregressive rescorer: teacher-forced probabilities vs audiocraft's MusicGen LMModel (delay pattern),
MusicGen checkpoint loading, and rescoring weight 0 == plain MAGNeT."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

torch = pytest.importorskip('torch')
from magnet_jax import decoding  # noqa: E402
from magnet_jax.decoding import rescoring  # noqa: E402
from magnet_jax.io.audiocraft import config_from_xp_cfg  # noqa: E402
from magnet_jax.io.errors import CheckpointError  # noqa: E402
from magnet_jax.models.config import MagnetConfig  # noqa: E402
from magnet_jax.models.params import init_params  # noqa: E402
from reference import audiocraft_lm  # noqa: E402

TOL = 1e-4
MAGNET = MagnetConfig(dim=32, num_heads=4, num_layers=2, card=32, text_dim=24, segment_duration=1.0)
RESCORER = dataclasses.replace(MAGNET, dim=48, num_heads=4, causal=True, codebooks_pattern='delay')
DESCRIPTIONS = ['calm piano', 'fast drums', None, None]  # cond rows, then their CFG null rows


@pytest.fixture(scope='module')
def musicgen(tmp_path_factory):
  path = tmp_path_factory.mktemp('musicgen') / 'state_dict.bin'
  model, config, params, cond, cond_mask = audiocraft_lm.released_pair(RESCORER, DESCRIPTIONS, str(path), seed=1)
  codes = np.random.default_rng(0).integers(0, RESCORER.card + 1, size=(len(DESCRIPTIONS), RESCORER.n_q, 20))
  return model, config, params, cond, cond_mask, codes  # codes include mask / special ids


def test_musicgen_checkpoint_loads_as_causal_config(musicgen):
  _, config, *_ = musicgen
  assert config == RESCORER


@pytest.mark.parametrize('keep_only_valid_steps', [True, False])
def test_teacher_forced_logits_match_compute_predictions(musicgen, keep_only_valid_steps):
  model, config, params, cond, cond_mask, codes = musicgen
  with torch.no_grad():
    tensors = audiocraft_lm.condition_tensors(model, DESCRIPTIONS)
    out = model.compute_predictions(torch.as_tensor(codes), [], tensors, keep_only_valid_steps=keep_only_valid_steps)
  valid = out.mask.numpy()
  assert keep_only_valid_steps or valid.all()
  got = np.asarray(jax.jit(rescoring.teacher_forced_logits, static_argnums=1)(params, config, codes, cond, cond_mask))
  err = np.abs(got[valid] - out.logits.numpy()[valid]).max()
  assert err <= TOL, f'max abs logit diff {err:.2e}'
  # ... hence the probabilities too.
  probs = jax.nn.softmax(got, axis=-1)[valid]
  assert np.abs(probs - torch.softmax(out.logits, -1).numpy()[valid]).max() <= TOL


def test_level_logits_equal_teacher_forced_level(musicgen):
  _, config, params, cond, cond_mask, codes = musicgen
  full = rescoring.teacher_forced_logits(params, config, codes, cond, cond_mask)
  level_logits = jax.jit(rescoring.rescorer_level_logits, static_argnums=1)
  for level in range(config.n_q):
    got = level_logits(params, config, codes, cond, cond_mask, jnp.int32(level))
    np.testing.assert_allclose(got, full[:, level], atol=1e-5)


def test_rescorer_weight_zero_is_plain_magnet_bit_exactly(musicgen):
  _, rescorer_config, rescorer_params, cond, cond_mask, _ = musicgen
  params = init_params(MAGNET, jax.random.key(3))
  run = lambda weight, **rescorer: np.asarray(decoding.generate(
      params, cond[:2], cond_mask[:2], jax.random.key(0), lm_config=MAGNET, length=30,
      decoding=decoding.DecodingConfig(decoding_steps=(6, 3, 3, 3), rescorer_weight=weight), **rescorer))
  plain = run(0.0)
  rescorer = {'rescorer_params': rescorer_params, 'rescorer_config': rescorer_config}
  np.testing.assert_array_equal(run(0.0, **rescorer), plain)
  assert np.any(run(0.9, **rescorer) != plain)


def test_rescore_fn_rejects_mismatched_models(musicgen):
  _, config, params, cond, cond_mask, _ = musicgen
  with pytest.raises(ValueError, match='causal'):
    rescoring.rescore_fn(params, MAGNET, MAGNET, cond, cond_mask, 3.0)
  with pytest.raises(ValueError, match='card'):
    rescoring.rescore_fn(params, config, dataclasses.replace(MAGNET, card=64), cond, cond_mask, 3.0)


@pytest.mark.parametrize('lm_model, pattern', [
    ('transformer_lm', {'modeling': 'parallel'}),
    ('transformer_lm', {'modeling': 'delay', 'delay': {'delays': [0, 1, 2, 3], 'flatten_first': 2}}),
    ('transformer_lm', {'modeling': 'delay', 'delay': {'delays': [0, 0, 0, 0]}}),
    ('transformer_lm_magnet', {'modeling': 'unroll'}),
    ('encodec_lm', {'modeling': 'delay'}),
])
def test_loader_rejects_layouts_it_cannot_decode(lm_model, pattern):
  cfg = yaml.safe_load(audiocraft_lm.xp_cfg_yaml(RESCORER))
  cfg.update(lm_model=lm_model, codebooks_pattern=pattern)
  with pytest.raises(CheckpointError, match='unsupported LM layout'):
    config_from_xp_cfg(cfg)
