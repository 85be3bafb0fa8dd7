"""MagnetLM without the reference: restricted-context masks, shapes, bf16 compute, bad inputs."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax.config import MagnetConfig
from magnet_jax.models import MagnetLM
from magnet_jax.models.attention import self_attention_mask
from magnet_jax.models.params import count_params, init_params

CONFIG = MagnetConfig(dim=64, num_heads=4, num_layers=2, card=32, text_dim=16)


def test_restricted_context_mask():
  assert self_attention_mask(CONFIG, 20, 0) is None
  local = np.asarray(self_attention_mask(CONFIG, 20, 2))[0, 0]
  i, j = np.indices((20, 20))
  np.testing.assert_array_equal(local, np.abs(i - j) <= 5)
  assert local.sum(1).max() == 11  # itself +- 5 frames
  traced = jax.jit(lambda s: self_attention_mask(CONFIG, 20, s))
  assert np.asarray(traced(jnp.int32(0))).all()
  np.testing.assert_array_equal(np.asarray(traced(jnp.int32(3)))[0, 0], local)
  per_example = np.asarray(self_attention_mask(CONFIG, 20, jnp.array([0, 1])))
  assert per_example.shape == (2, 1, 20, 20) and per_example[0].all()
  np.testing.assert_array_equal(per_example[1, 0], local)
  causal = np.asarray(self_attention_mask(dataclasses.replace(CONFIG, causal=True), 20, 1))[0, 0]
  np.testing.assert_array_equal(causal, j <= i)
  assert self_attention_mask(dataclasses.replace(CONFIG, subcodes_context=-1), 20, 2) is None


def test_upper_levels_only_see_local_context():
  """Changing a frame far away changes level-0 logits but not level > 0 logits at a given position."""
  params = init_params(CONFIG, jax.random.key(0))
  apply = jax.jit(lambda codes, stage: MagnetLM(CONFIG).apply(
      {'params': params}, codes, jnp.ones((1, 3, 16)), jnp.ones((1, 3), bool), stage, method=MagnetLM.level_logits))
  codes = jax.random.randint(jax.random.key(1), (1, 4, 40), 0, 32)
  far = codes.at[:, :, 30].set((codes[:, :, 30] + 1) % 32)
  for stage, changes in ((0, True), (1, False), (3, False)):
    delta = float(jnp.abs(apply(codes, stage)[0, 10] - apply(far, stage)[0, 10]).max())
    assert (delta > 1e-4) == changes, (stage, delta)


def test_shapes_bf16_and_param_count():
  params = init_params(CONFIG, jax.random.key(0))
  codes = jax.random.randint(jax.random.key(1), (2, 4, 30), 0, 33)
  cond, mask = jax.random.normal(jax.random.key(2), (2, 5, 16)), jnp.ones((2, 5), bool)
  fp32 = MagnetLM(CONFIG).apply({'params': params}, codes, cond, mask, 1)
  bf16 = MagnetLM(dataclasses.replace(CONFIG, dtype='bfloat16')).apply({'params': params}, codes, cond, mask, 1)
  assert fp32.shape == bf16.shape == (2, 4, 30, 32) and bf16.dtype == jnp.float32
  assert float(jnp.abs(fp32 - bf16).max()) < 0.1 * float(jnp.abs(fp32).max())
  d, f, L = 64, 256, 2
  expected = 4 * 33 * d + 16 * d + d + L * (2 * 4 * d * d + 2 * d * f + 6 * d) + 2 * d + 4 * d * 32
  assert count_params(params) == expected


def test_released_small_size():
  small = MagnetConfig()
  params = jax.eval_shape(lambda: init_params(small, jax.random.key(0)))
  assert 415e6 < count_params(params) < 425e6  # ~420M, as audiocraft's magnet-small


def test_bad_inputs():
  params = init_params(CONFIG, jax.random.key(0))
  lm = MagnetLM(CONFIG)
  with pytest.raises(ValueError, match=r'codes must be \[B, K=4, T\]'):
    lm.apply({'params': params}, jnp.zeros((1, 3, 10), jnp.int32), jnp.zeros((1, 2, 16)), jnp.ones((1, 2), bool))
  with pytest.raises(ValueError, match='cond_mask'):
    lm.apply({'params': params}, jnp.zeros((1, 4, 10), jnp.int32), jnp.zeros((1, 2, 16)), jnp.ones((1, 3), bool))
  with pytest.raises(ValueError, match='unknown model config key'):
    MagnetConfig.from_dict({'dim': 64, 'heads': 4})
  with pytest.raises(ValueError, match='dtype'):
    MagnetConfig(dtype='fp8')
