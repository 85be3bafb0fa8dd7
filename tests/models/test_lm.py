"""MagnetLM without the reference: restricted-context masks, shapes, bf16 compute, bad inputs."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax.models import MagnetLM
from magnet_jax.models.attention import LevelAttention, level_self_attention, local_attention, self_attention_mask
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.params import count_params, init_params

CONFIG = MagnetConfig(dim=64, num_heads=4, num_layers=2, card=32, text_dim=16)


@pytest.fixture(scope='module')
def params():
  return init_params(CONFIG, jax.random.key(0))


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


@pytest.mark.parametrize('length, context', [(37, 5), (8, 5), (3, 5), (50, 0), (41, 12)])
def test_local_attention_equals_the_banded_mask(length, context):
  """Blockwise restricted-context attention = dense attention with the |i - j| <= context mask, values and grads."""
  q, k, v = (jax.random.normal(jax.random.key(i), (2, length, 3, 8)) for i in range(3))
  i, j = np.indices((length, length))
  dense = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, mask=jnp.asarray(np.abs(i - j) <= context))
  local = lambda q, k, v: local_attention(q, k, v, context)
  np.testing.assert_allclose(jax.jit(local)(q, k, v), jax.jit(dense)(q, k, v), atol=1e-6)
  grad = lambda f: jax.jit(jax.grad(lambda *x: jnp.sum(jnp.sin(f(*x))), argnums=(0, 1, 2)))(q, k, v)
  for got, want in zip(grad(local), grad(dense), strict=True):
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_level_attention_matches_the_masked_forward(params):
  """The LM's per-level self-attention (no [T, T] mask, traced level) gives the logits of the explicit masks."""
  codes = jax.random.randint(jax.random.key(1), (2, 4, 45), 0, 33)
  cond, mask = jax.random.normal(jax.random.key(2), (2, 5, 16)), jnp.ones((2, 5), bool)
  lm = MagnetLM(CONFIG)
  level_logits = jax.jit(lambda s: lm.apply({'params': params}, codes, cond, mask, s, method=MagnetLM.level_logits))
  masked = jax.jit(lambda s: lm.apply({'params': params}, codes, cond, mask, s, self_attention_mask(CONFIG, 45, s),
                                      method=MagnetLM.level_logits))
  assert isinstance(level_self_attention(CONFIG, 45, 1), LevelAttention)
  assert level_self_attention(CONFIG, 45, jnp.array([0, 1])).shape == (2, 1, 45, 45)  # per-example: explicit masks
  for level in range(CONFIG.n_q):
    np.testing.assert_allclose(level_logits(jnp.int32(level)), masked(jnp.int32(level)), atol=2e-5)


def test_upper_levels_only_see_local_context(params):
  """Changing a frame far away changes level-0 logits but not level > 0 logits at a given position."""
  apply = jax.jit(lambda codes, level: MagnetLM(CONFIG).apply(
      {'params': params}, codes, jnp.ones((1, 3, 16)), jnp.ones((1, 3), bool), level, method=MagnetLM.level_logits))
  codes = jax.random.randint(jax.random.key(1), (1, 4, 40), 0, 32)
  far = codes.at[:, :, 30].set((codes[:, :, 30] + 1) % 32)
  for level, changes in ((0, True), (1, False), (3, False)):
    delta = float(jnp.abs(apply(codes, level)[0, 10] - apply(far, level)[0, 10]).max())
    assert (delta > 1e-4) == changes, (level, delta)


def test_shapes_bf16_and_param_count(params):
  codes = jax.random.randint(jax.random.key(1), (2, 4, 30), 0, 33)
  cond, mask = jax.random.normal(jax.random.key(2), (2, 5, 16)), jnp.ones((2, 5), bool)
  apply = lambda config: jax.jit(lambda p: MagnetLM(config).apply({'params': p}, codes, cond, mask, 1))(params)
  fp32, bf16 = apply(CONFIG), apply(dataclasses.replace(CONFIG, dtype='bfloat16'))
  assert fp32.shape == bf16.shape == (2, 4, 30, 32) and bf16.dtype == jnp.float32
  assert float(jnp.abs(fp32 - bf16).max()) < 0.1 * float(jnp.abs(fp32).max())
  d, f, L = 64, 256, 2
  expected = 4 * 33 * d + 16 * d + d + L * (2 * 4 * d * d + 2 * d * f + 6 * d) + 2 * d + 4 * d * 32
  assert count_params(params) == expected


def test_released_small_size():
  small = MagnetConfig()
  params = jax.eval_shape(lambda: init_params(small, jax.random.key(0)))
  assert 415e6 < count_params(params) < 425e6  # ~420M, as audiocraft's magnet-small


def test_bad_inputs(params):
  lm = MagnetLM(CONFIG)
  with pytest.raises(ValueError, match=r'codes must be \[B, K=4, T\]'):
    lm.apply({'params': params}, jnp.zeros((1, 3, 10), jnp.int32), jnp.zeros((1, 2, 16)), jnp.ones((1, 2), bool))
  with pytest.raises(ValueError, match='cond_mask'):
    lm.apply({'params': params}, jnp.zeros((1, 4, 10), jnp.int32), jnp.zeros((1, 2, 16)), jnp.ones((1, 3), bool))
  with pytest.raises(ValueError, match='unknown model config key'):
    MagnetConfig.from_dict({'dim': 64, 'heads': 4})
  with pytest.raises(ValueError, match='dtype'):
    MagnetConfig(dtype='fp8')
