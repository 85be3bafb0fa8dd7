"""Hybrid-MAGNeT: the KV-cached decode path, the autoregressive prefix and the semi-autoregressive mask."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax import decoding
from magnet_jax.decoding import hybrid
from magnet_jax.decoding.guidance import guide, with_null_conditions
from magnet_jax.decoding.pattern import delay_codes
from magnet_jax.models import MagnetLM
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.lm import init_cache
from tests.helpers import lm_inputs

CONFIG = MagnetConfig(dim=32, num_heads=4, num_layers=2, card=32, text_dim=24, segment_duration=1.0)
GREEDY = hybrid.HybridConfig(prefix_length=9, use_sampling=False)


@pytest.fixture(scope='module')
def inputs():
  return lm_inputs(CONFIG)


@pytest.mark.parametrize('scan_layers', [True, False])
def test_cached_decode_equals_uncached_causal_forward(inputs, scan_layers):
  params, cond, cond_mask = inputs
  config = dataclasses.replace(CONFIG, scan_layers=scan_layers)
  if not scan_layers:  # the same weights, unstacked
    layers = params['transformer']['layers']
    params = {**params, 'transformer': {f'layers_{i}': jax.tree.map(lambda x, i=i: x[i], layers)
                                        for i in range(config.num_layers)}}
  codes = jax.random.randint(jax.random.key(2), (2, config.n_q, 12), 0, config.card + 1)
  causal = MagnetLM(dataclasses.replace(config, causal=True))
  expected = jax.jit(lambda p: causal.apply({'params': p}, codes, cond, cond_mask))(params)  # [B, K, T, V]
  lm = MagnetLM(config)  # decode is causal whatever the config says
  decode = jax.jit(lambda c, cache, index: lm.apply({'params': params}, c, cond, cond_mask, cache, index,
                                                    method=MagnetLM.decode))
  logits, cache = decode(codes[..., :3], init_cache(config, 2, 12), 0)  # a 3-step prompt, then one step at a time
  chunks = [logits]
  for index in range(3, 12):
    logits, cache = decode(codes[..., index:index + 1], cache, jnp.int32(index))
    chunks.append(logits)
  err = np.abs(np.concatenate(chunks, axis=2) - np.asarray(expected)).max()
  assert err <= 1e-4, f'max abs logit diff {err:.2e}'


def test_prefix_greedy_tokens_are_argmax_of_the_uncached_forward(inputs):
  params, cond, cond_mask = inputs
  length, steps = 20, GREEDY.prefix_length
  prefix = jax.jit(hybrid.autoregressive_prefix, static_argnames=('config', 'hybrid', 'length'))
  codes = np.asarray(prefix(params, CONFIG, cond, cond_mask, jax.random.key(0), hybrid=GREEDY, length=length))
  levels, frames = np.arange(CONFIG.n_q)[:, None], np.arange(length)[None, :]
  known = frames < steps - levels  # the staircase
  assert np.all((codes < CONFIG.card) == known[None])
  sequence = delay_codes(jnp.asarray(codes), CONFIG.card)
  causal = MagnetLM(dataclasses.replace(CONFIG, causal=True))
  greedy = jax.jit(lambda p: jnp.argmax(guide(causal.apply({'params': p}, jnp.concatenate([sequence, sequence]),
                                                           *with_null_conditions(cond, cond_mask)),
                                              GREEDY.cfg_coef), axis=-1))
  tokens = np.asarray(greedy(params))  # [B, K, S]: step s predicts s + 1
  for q in range(CONFIG.n_q):
    frames_q = np.arange(steps - q)
    np.testing.assert_array_equal(codes[:, q, frames_q], tokens[:, q, frames_q + q])


def test_prefix_equals_audiocraft_musicgen_greedy_generation(tmp_path):
  """With p = G + K - 1 steps every level has G frames: audiocraft's LMModel.generate (streaming, delay pattern)."""
  pytest.importorskip('torch')
  from magnet_jax.io.audiocraft import load_audiocraft_lm
  from reference import audiocraft_lm
  musicgen = dataclasses.replace(CONFIG, causal=True)
  rng = np.random.default_rng(0)
  states = {'calm piano': rng.normal(size=(5, CONFIG.text_dim)), 'fast drums': rng.normal(size=(3, CONFIG.text_dim))}
  model = audiocraft_lm.build_musicgen_lm(musicgen, states, seed=1)
  audiocraft_lm.save_released(model, musicgen, str(tmp_path / 'state_dict.bin'))
  config, params = load_audiocraft_lm(tmp_path)
  attributes = [audiocraft_lm.conditioners.ConditioningAttributes(text={'description': d}) for d in states]
  tokenized = model.condition_provider.tokenize(attributes)['description']
  frames = 16
  expected = model.generate(conditions=attributes, max_gen_len=frames, use_sampling=False, cfg_coef=3.0).numpy()
  ar = dataclasses.replace(GREEDY, prefix_length=frames + CONFIG.n_q - 1, cfg_coef=3.0)
  prefix = jax.jit(hybrid.autoregressive_prefix, static_argnames=('config', 'hybrid', 'length'))
  got = prefix(params, config, tokenized['states'].numpy(), tokenized['attention_mask'].numpy().astype(bool),
               jax.random.key(0), hybrid=ar, length=frames)
  np.testing.assert_array_equal(np.asarray(got), expected)


def _branch_level_mask(config: MagnetConfig, length: int, level: int) -> np.ndarray:
  """lm_hybrid_magnet.py `_stage_attn_mask` (c44e943) as booleans, S = T + K (no align-8 padding)."""
  steps = length + config.n_q
  t = np.arange(length)
  if level > 0:
    sa = np.abs(t[:, None] - t[None, :]) <= config.subcodes_context
  else:
    sa = np.ones((length, length), bool)
  final = np.zeros((steps, steps), bool)
  final[level:level + length, 1 + level:1 + level + length] = sa
  final[level + length:, :] = True
  final[:level, :] = True
  return final


@pytest.mark.parametrize('level', [0, 1, 3])
def test_attention_mask_is_the_branch_mask_with_causal_prefix_rows(level):
  length, prefix = 20, 7
  mask = np.asarray(jax.jit(hybrid.hybrid_attention_mask, static_argnums=(0, 1, 2))(
      CONFIG, prefix, length, jnp.int32(level)))[0, 0]
  steps = np.arange(length + CONFIG.n_q)
  np.testing.assert_array_equal(mask[:prefix], steps[None, :] <= steps[:prefix, None])
  np.testing.assert_array_equal(mask[prefix:], _branch_level_mask(CONFIG, length, level)[prefix:])


def test_generate_keeps_the_prefix_and_is_deterministic(inputs):
  params, cond, cond_mask = inputs
  config = decoding.DecodingConfig(decoding_steps=(4, 2, 2, 2))
  ar = hybrid.HybridConfig(prefix_length=9, top_k=5)
  run = lambda seed: np.asarray(hybrid.generate(params, cond, cond_mask, jax.random.key(seed), lm_config=CONFIG,
                                                decoding=config, hybrid=ar, length=32))
  codes = run(0)
  assert codes.shape == (2, CONFIG.n_q, 30) and codes.min() >= 0 and codes.max() < CONFIG.card
  prefix = jax.jit(hybrid.autoregressive_prefix, static_argnames=('config', 'hybrid', 'length'))(
      params, CONFIG, cond, cond_mask, jax.random.split(jax.random.key(0))[0], hybrid=ar, length=30)
  known = np.asarray(prefix) < CONFIG.card
  np.testing.assert_array_equal(codes[known], np.asarray(prefix)[known])
  size = hybrid.generate._cache_size()
  np.testing.assert_array_equal(run(0), codes)
  assert np.any(run(1) != codes)
  assert hybrid.generate._cache_size() == size


def test_pipeline_of_a_delay_pattern_lm_decodes_hybrid(tmp_path):
  from magnet_jax.generation import pretrained, random_pipeline
  lm_config = dataclasses.replace(random_pipeline.TINY_LM, codebooks_pattern='delay')
  random_pipeline.export(tmp_path, lm_config=lm_config, decoding=decoding.DecodingConfig(decoding_steps=(4, 2, 2, 2)))
  pipeline = pretrained.load(tmp_path)
  assert pipeline.decoder.hybrid == hybrid.HybridConfig(prefix_length=lm_config.sequence_length // 2,
                                                        top_k=lm_config.card)
  codes = pipeline.generate_tokens(['drums', 'flute'], seed=3)
  # the pipeline's program is hybrid.generate with example b's key: the same tokens
  cond, cond_mask, _ = pipeline.condition(['drums', 'flute'])
  keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(jax.random.key(s), 0), 0))(jnp.arange(3, 5))
  expected = hybrid.generate(pipeline.lm_params, cond, cond_mask, keys, lm_config=lm_config,
                             decoding=pipeline.decoding, hybrid=pipeline.decoder.hybrid, length=codes.shape[-1])
  np.testing.assert_array_equal(codes, np.asarray(expected))
  assert pipeline.generate(['drums'], seed=3).shape == (1, 1, codes.shape[-1] * pipeline.codec_config.hop_length)
  with pytest.raises(ValueError, match='given frames .* the hybrid strategy'):
    pipeline.generate_tokens(['drums'], prompt=codes[:1, :, :6])
  with pytest.raises(ValueError, match='more than one window .* the hybrid strategy'):
    pipeline.generate_tokens(['drums'], duration=3 * pipeline.duration)
  with pytest.raises(ValueError, match='a negative prompt needs a decoding strategy that supports it'):
    pipeline.generate_tokens(['drums'], negative='noise')
  with pytest.raises(ValueError, match='step progress .* the hybrid strategy'):
    pipeline.generate_tokens(['drums'], on_step=lambda done, total: None)
  with pytest.raises(ValueError, match='more than its autoregressive prefix'):
    pipeline.generate_tokens(['drums'], duration=0.2)
