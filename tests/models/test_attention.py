"""The attention kernel choice: cuDNN's fused kernel (`jax.nn.dot_product_attention`) where it applies, XLA
elsewhere. No GPU here, so the selection is tested on described devices and the cuDNN call's arguments (key lengths
for the text, no mask at level 0) are tested through `jax.nn.dot_product_attention`'s XLA implementation, which
cuDNN's kernel is checked against by JAX: equal to our attention within 1e-5 (float32)."""
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax.models import MagnetLM, attention
from magnet_jax.models.attention import KeyPrefix, attention_implementation, cross_attention_mask, dot_product_attention
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.params import init_params

H200 = types.SimpleNamespace(platform='gpu', device_kind='NVIDIA H200', compute_capability='9.0')
A100 = types.SimpleNamespace(platform='gpu', device_kind='NVIDIA A100-SXM4-80GB', compute_capability='8.0')
V100 = types.SimpleNamespace(platform='gpu', device_kind='Tesla V100-SXM2-16GB', compute_capability='7.0')
MI300 = types.SimpleNamespace(platform='gpu', device_kind='AMD Instinct MI300X', compute_capability='9.4')
CPU = types.SimpleNamespace(platform='cpu', device_kind='cpu')


def _q(dtype=jnp.bfloat16, head_dim=64):
  return jax.ShapeDtypeStruct((2, 498, 16, head_dim), dtype)  # magnet-small: 16 heads of 64


def test_cudnn_where_it_applies():
  prefix = KeyPrefix(jnp.int32(12))
  for device in (H200, A100):
    for dtype in (jnp.bfloat16, jnp.float16):
      assert attention_implementation(_q(dtype), None, device) == 'cudnn'    # level 0 full attention
      assert attention_implementation(_q(dtype), prefix, device) == 'cudnn'  # text cross-attention
  assert attention_implementation(_q(head_dim=128), None, H200) == 'cudnn'


@pytest.mark.parametrize('q, mask, device', [
    (_q(), None, CPU),                                   # no GPU
    (_q(), None, MI300),                                 # not NVIDIA (cuDNN)
    (_q(), None, V100),                                  # pre-Ampere: no flash attention
    (_q(jnp.float32), None, H200),                       # float32: cuDNN's kernel takes fp16/bf16 only
    (_q(head_dim=12), None, H200),                       # head dim not a multiple of 8
    (_q(head_dim=256), None, H200),                      # head dim over 128
    (_q(), jnp.ones((1, 1, 498, 498), bool), H200),      # an arbitrary mask (causal, cached, Hybrid's)
])
def test_xla_elsewhere(q, mask, device):
  assert attention_implementation(q, mask, device) == 'xla'


def test_this_machine_without_gpu_uses_xla():
  if jax.default_backend() != 'cpu':
    pytest.skip('checks the CPU fallback')
  assert attention_implementation(_q(), None) == 'xla'


@pytest.mark.parametrize('shape, keys, length', [
    ((2, 45, 4, 16), 45, None),     # level 0 self-attention (tiny test LM)
    ((1, 498, 16, 64), 498, None),  # level 0 self-attention, magnet-small at 10 s
    ((2, 45, 4, 16), 7, 5),         # text cross-attention, 2 padded text positions past the longest
    ((1, 498, 16, 64), 16, 16),     # text cross-attention, magnet-small, 16 text states
    ((4, 1, 4, 16), 9, 6),          # cross-attention of one decoded frame (the autoregressive baseline)
])
def test_jax_nn_attention_equals_ours(shape, keys, length):
  """The call the cuDNN path makes (no mask, or key lengths for the text), in JAX's XLA implementation, equals
  `dot_product_attention` with the materialised mask within 1e-5."""
  batch, _, heads, head_dim = shape
  q = jax.random.normal(jax.random.key(0), shape)
  k, v = (jax.random.normal(jax.random.key(i), (batch, keys, heads, head_dim)) for i in (1, 2))
  mask = None if length is None else KeyPrefix(jnp.int32(length))
  lengths = None if length is None else jnp.full((batch,), length, jnp.int32)
  fused = jax.nn.dot_product_attention(q, k, v, key_value_seq_lengths=lengths, implementation='xla')
  ours = dot_product_attention(q, k, v, None if mask is None else mask.mask(keys))
  np.testing.assert_allclose(fused, ours, atol=1e-5)


def test_cross_attention_mask_is_the_longest_text():
  cond_mask = jnp.array([[True, True, True, False, False], [True, False, False, False, False]])
  prefix = cross_attention_mask(cond_mask)
  assert int(prefix.length) == 3
  np.testing.assert_array_equal(prefix.mask(5)[0, 0, 0], [True, True, True, False, False])
  assert int(cross_attention_mask(jnp.zeros((2, 4), bool)).length) == 1  # null conditions: one zero state


CONFIG = MagnetConfig(dim=64, num_heads=4, num_layers=2, card=32, text_dim=16)


@pytest.fixture(scope='module')
def lm_inputs():
  params = init_params(CONFIG, jax.random.key(0))
  codes = jax.random.randint(jax.random.key(1), (2, 4, 30), 0, 33)
  cond = jax.random.normal(jax.random.key(2), (2, 6, 16))
  cond_mask = jnp.array([[True] * 4 + [False] * 2, [True] * 2 + [False] * 4])  # padded text
  return params, codes, cond, cond_mask


def _level_logits(lm_inputs, level):
  params, codes, cond, cond_mask = lm_inputs
  return jax.jit(lambda: MagnetLM(CONFIG).apply({'params': params}, codes, cond, cond_mask, jnp.int32(level),
                                                method=MagnetLM.level_logits))()


def test_lm_on_the_fused_path_equals_the_xla_path(lm_inputs, monkeypatch):
  """The LM routed as on a GPU (cuDNN for level 0 and the text; the kernel swapped for JAX's XLA implementation of
  the same call) gives the XLA path's logits within 1e-5, at level 0 and at a banded level."""
  expected = [_level_logits(lm_inputs, level) for level in (0, 2)]
  calls = []
  xla_call = jax.nn.dot_product_attention

  def kernel(q, k, v, *, key_value_seq_lengths, implementation):
    assert implementation == 'cudnn'
    calls.append(key_value_seq_lengths is None)
    return xla_call(q, k, v, key_value_seq_lengths=key_value_seq_lengths, implementation='xla')

  monkeypatch.setattr(attention, 'attention_implementation', lambda q, mask: 'cudnn')
  monkeypatch.setattr(jax.nn, 'dot_product_attention', kernel)
  for level, want in zip((0, 2), expected, strict=True):
    np.testing.assert_allclose(_level_logits(lm_inputs, level), want, atol=1e-5)
  assert True in calls and False in calls  # both the unmasked self-attention and the text's key lengths


def test_falls_back_to_xla_when_cudnn_rejects(lm_inputs, monkeypatch):
  """JAX raises at trace time when cuDNN cannot take a case (missing cuDNN, unsupported shape): XLA runs it."""
  expected = _level_logits(lm_inputs, 0)

  def rejects(*args, **kwargs):
    raise NotImplementedError('The head dim must be <= 128')

  monkeypatch.setattr(attention, 'attention_implementation', lambda q, mask: 'cudnn')
  monkeypatch.setattr(jax.nn, 'dot_product_attention', rejects)
  np.testing.assert_allclose(_level_logits(lm_inputs, 0), expected, atol=0)
