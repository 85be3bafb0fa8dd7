"""The one-program MAGNeT decoder: schedules, span selection, sampling statistics, compilation, determinism."""
import functools
import math
import re
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax import decoding
from magnet_jax.decoding import sampling
from magnet_jax.decoding import spans as span_scoring
from magnet_jax.models.config import MagnetConfig
from tests.helpers import lm_inputs

CONFIG = MagnetConfig(dim=32, num_heads=4, num_layers=2, card=32, text_dim=24, segment_duration=1.0)
STEPS = (6, 3, 3, 2)


@pytest.fixture(scope='module')
def inputs():
  return lm_inputs(CONFIG)


def _generate(inputs, seed, **decoding_kwargs):
  params, cond, cond_mask = inputs
  config = decoding.DecodingConfig(decoding_steps=STEPS, **decoding_kwargs)
  return decoding.generate(params, cond, cond_mask, jax.random.key(seed), lm_config=CONFIG, decoding=config,
                           length=31)


def test_torch_linspace_is_bit_exact():
  torch = pytest.importorskip('torch')
  for n in range(1, 201):
    np.testing.assert_array_equal(decoding.torch_linspace01(n), torch.linspace(0, 1, n).numpy())


@pytest.mark.parametrize('anneal_temp', [True, False])
def test_step_tables_follow_the_reference_formulas(anneal_temp):
  """num_masked, CFG coefficient and temperature per step, computed as `_generate_stage` does with torch."""
  torch = pytest.importorskip('torch')
  config = decoding.DecodingConfig(decoding_steps=(20, 10, 7, 1), temp=3.5, max_cfg_coef=20.0, min_cfg_coef=2.0,
                                   anneal_temp=anneal_temp)
  to_generate = (166, 498, 10, 1500)
  tables = decoding.step_tables(config)
  i = 0
  for level, (steps, n) in enumerate(zip(config.decoding_steps, to_generate, strict=True)):
    for timestep, steps_left in zip(torch.linspace(0, 1, steps), reversed(range(steps)), strict=True):
      mask_p = torch.cos(timestep * math.pi * 0.5)
      assert tables['level'][i] == level and tables['first'][i] == (steps_left == steps - 1)
      assert decoding.num_masked(tables['mask_p'][i], n) == max(int((mask_p * n).item()), 1)
      coef = float(mask_p) * config.max_cfg_coef + (1 - float(mask_p)) * config.min_cfg_coef
      assert tables['cfg_coef'][i] == pytest.approx(coef, rel=1e-6)
      temp = config.temp * (steps_left / steps) if anneal_temp else config.temp
      assert tables['temperature'][i] == np.float32(max(temp, 1e-2))
      i += 1
  assert i == config.num_steps == len(tables['level'])


def test_mask_counts_match_torch_over_practical_range():
  """The correctly rounded cosine gives torch's int(mask_p * n) for <= 60 steps and <= 1500 spans or frames."""
  torch = pytest.importorskip('torch')
  counts = np.arange(1, 1501, dtype=np.float32)
  for steps in range(1, 61):
    ref = np.array([torch.cos(t * math.pi * 0.5).item() for t in torch.linspace(0, 1, steps)], np.float32)
    expected = (ref[:, None] * counts).astype(np.float32).astype(np.int64)
    got = (decoding.mask_schedule(steps)[:, None] * counts).astype(np.float32).astype(np.int64)
    np.testing.assert_array_equal(got, expected, err_msg=f'{steps} steps')


def test_least_probable_span_mask_matches_audiocraft():
  pytest.importorskip('torch')
  from reference.audiocraft_lm import MagnetLMModel, torch
  reference = types.SimpleNamespace(span_len=3)
  reference._construct_spans_mask = functools.partial(MagnetLMModel._construct_spans_mask, reference)
  mask_fn = jax.jit(span_scoring.least_probable_span_mask, static_argnums=2)
  rng = np.random.default_rng(0)
  for trial in range(30):
    length = (14, 45)[trial % 2]  # torch sorts <= 16 entries with a stable algorithm, more with another
    # As after a step: the frames re-masked then (a union of spans) have scores, the others are frozen.
    starts = rng.random((3, length - 2)) < rng.uniform(0.2, 1.0)
    remasked = np.zeros((3, length), bool)
    for offset in range(3):
      remasked[:, offset:offset + length - 2] |= starts
    scores = np.where(remasked, 20 * rng.exponential(size=(3, length)), decoding.DONT_REMASK_SCORE).astype(np.float32)
    num_masked = int(rng.integers(1, max(remasked.sum(-1).min(), 1) + 1))
    got = np.asarray(mask_fn(jnp.asarray(scores), jnp.int32(num_masked), 3))
    for b in range(3):
      expected = MagnetLMModel._least_probable_span_masking(reference, torch.as_tensor(scores[b][None, None]),
                                                            num_masked)
      np.testing.assert_array_equal(got[b], expected.numpy()[0, 0], err_msg=f'trial {trial} row {b}')


def test_top_k_mask_selects_the_topk_set():
  torch = pytest.importorskip('torch')
  scores = np.random.default_rng(1).normal(size=(4, 50)).astype(np.float32)
  for k in (1, 7, 50):
    expected = np.zeros_like(scores, bool)
    np.put_along_axis(expected, torch.as_tensor(scores).topk(k, dim=-1).indices.numpy(), True, axis=-1)
    np.testing.assert_array_equal(np.asarray(span_scoring.top_k_mask(jnp.asarray(scores), k)), expected)


def test_top_p_never_samples_outside_the_nucleus():
  probs = jax.random.dirichlet(jax.random.key(0), jnp.full((32,), 0.3), (64,))
  draw = jax.jit(jax.vmap(lambda key: sampling.sample_top_p(key, probs, 0.8)))
  tokens = draw(jax.random.split(jax.random.key(1), 400))
  probs, tokens = np.asarray(probs, np.float64), np.asarray(tokens)
  order = np.argsort(-probs, axis=-1)
  sorted_probs = np.take_along_axis(probs, order, axis=-1)
  before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass before each token, descending order
  rank = np.argsort(order, axis=-1)
  mass_before = np.take_along_axis(before, rank, axis=-1)  # per token id
  assert np.all(np.take_along_axis(mass_before, tokens.T, axis=-1) <= 0.8 + 1e-6)
  # Frequencies follow the renormalised nucleus.
  nucleus = np.where(mass_before <= 0.8, probs, 0.0)
  nucleus /= nucleus.sum(-1, keepdims=True)
  freq = np.stack([np.bincount(tokens[:, i], minlength=32) for i in range(64)]) / tokens.shape[0]
  assert np.abs(freq - nucleus).max() < 0.1


def test_sample_dispatch_and_sampled_probs():
  """argmax of logits when not sampling; top-k keeps the k most probable and reports renormalised probs."""
  logits = jax.random.normal(jax.random.key(0), (16, 32)) * 3
  probs = jax.nn.softmax(logits)
  tokens, token_probs = sampling.sample(jax.random.key(1), logits, probs, use_sampling=False, top_k=0, top_p=0.0)
  np.testing.assert_array_equal(tokens, jnp.argmax(logits, -1))
  np.testing.assert_array_equal(token_probs, probs.max(-1))
  tokens, token_probs = sampling.sample(jax.random.key(1), logits, probs, use_sampling=True, top_k=3, top_p=0.0)
  top3 = jax.lax.top_k(probs, 3)[0]
  assert np.all(np.asarray(jnp.take_along_axis(probs, tokens[:, None], -1)[:, 0]) >= np.asarray(top3[:, -1]))
  np.testing.assert_allclose(token_probs, jnp.take_along_axis(probs, tokens[:, None], -1)[:, 0] / top3.sum(-1),
                             rtol=1e-5)


def test_masked_spans_follow_the_cosine_schedule():
  """Each step re-masks exactly num_masked spans of the level being decoded (eager steps, fake logits)."""
  config = decoding.DecodingConfig(decoding_steps=(8, 5, 4, 3))
  decoder = decoding.MaskedDecoder(config, CONFIG.mask_id, 3, 30)
  seen = []

  def logits_fn(codes, level):
    row = np.asarray(codes)[:, int(level)]
    seen.append((row[:, 4:] == CONFIG.mask_id).sum(-1))  # frames to sample, outside the 4-frame prompt
    return jax.random.normal(jax.random.fold_in(jax.random.key(0), len(seen)), (4, 30, CONFIG.card))

  codes = jnp.full((2, CONFIG.n_q, 30), CONFIG.mask_id).at[..., :4].set(7)
  state = decoder.init(codes, codes != CONFIG.mask_id, jax.random.key(0))
  for i in range(config.num_steps):
    state = decoder.step(jnp.int32(i), state, logits_fn)
  num_masked = np.asarray(decoding.num_masked(decoder.tables['mask_p'], 9))  # 10 spans, 1 given entirely
  np.testing.assert_array_equal(num_masked[:8], [max(int(math.cos(math.pi / 2 * j / 7) * 9), 1) for j in range(8)])
  # The chunk holding frames 3..5 straddles the prompt: its 2 non-prompt frames count when it is selected.
  for i, count in enumerate(seen):
    assert np.all((count == 3 * num_masked[i]) | (count == 3 * num_masked[i] - 1)), (i, count, num_masked[i])
  assert not np.any(np.asarray(state.codes) == CONFIG.mask_id)
  np.testing.assert_array_equal(np.asarray(state.codes)[..., :4], 7)


def test_generate_is_one_program_without_host_callbacks(inputs):
  params, cond, cond_mask = inputs
  config = decoding.DecodingConfig(decoding_steps=STEPS)
  lowered = decoding.generate.lower(params, cond, cond_mask, jax.random.key(0), lm_config=CONFIG, decoding=config,
                                    length=31)
  hlo = lowered.compile().as_text()
  assert 'while' in hlo
  targets = re.findall(r'custom_call_target="([^"]+)"', hlo)
  assert not [t for t in targets if 'callback' in t.lower()], targets
  _generate(inputs, 0)
  size = decoding.generate._cache_size()
  _generate(inputs, 1)
  assert decoding.generate._cache_size() == size  # a new seed does not recompile


def test_same_seed_same_codes_other_seed_other_codes(inputs):
  first, again, other = (np.asarray(_generate(inputs, seed)) for seed in (0, 0, 1))
  assert first.shape == (2, CONFIG.n_q, 30)  # 31 frames trimmed to a multiple of span_len
  assert first.min() >= 0 and first.max() < CONFIG.card
  np.testing.assert_array_equal(first, again)
  assert np.any(first != other)


@pytest.mark.parametrize('kwargs', [{'span_arrangement': 'stride1', 'top_p': 0.0, 'top_k': 5},
                                    {'span_scoring': 'prod', 'use_sampling': False}])
def test_other_modes_decode_every_frame_from_the_logits(kwargs):
  """With logits fixed per level and frame (a fake LM that ignores its context), greedy decoding must return their
  argmax at every frame, and top-k sampling tokens among the k most probable, varying with the seed."""
  config = decoding.DecodingConfig(decoding_steps=STEPS, **kwargs)
  batch, length, card = 2, decoding.output_length(31, CONFIG.span_len, config.span_arrangement), CONFIG.card
  table = 3 * jax.random.normal(jax.random.key(5), (CONFIG.n_q, length, card))
  logits_fn = lambda codes, level: jnp.broadcast_to(table[level], (2 * batch, length, card))
  decoder = decoding.MaskedDecoder(config, CONFIG.mask_id, CONFIG.span_len, length)
  empty = jnp.zeros((batch, CONFIG.n_q, length), jnp.int32)
  run = jax.jit(lambda key: decoder.run(decoder.init(empty, jnp.zeros((batch, length), bool), key), logits_fn).codes)
  codes, other = np.asarray(run(jax.random.key(0))), np.asarray(run(jax.random.key(1)))
  table = np.asarray(table)  # [K, T, V]
  if not config.use_sampling:
    np.testing.assert_array_equal(codes, np.broadcast_to(table.argmax(-1), codes.shape))
    np.testing.assert_array_equal(codes, other)
    return
  kth = np.sort(table, axis=-1)[..., -config.top_k]  # [K, T]
  chosen = np.take_along_axis(np.broadcast_to(table, (batch,) + table.shape), codes[..., None], -1)[..., 0]
  assert np.all(chosen >= kth) and np.any(codes != other)
  assert np.any(codes != table.argmax(-1))  # sampled, not the argmax alone


@pytest.mark.parametrize('kwargs, message', [
    ({'decoding_steps': (3, 0)}, r'decoding_steps must be one integer per level, each in \[1, 1000\], got \(3, 0\)'),
    ({'decoding_steps': ()}, 'decoding_steps must be one integer per level'),
    ({'span_scoring': 'mean'}, "span_scoring must be one of 'max', 'prod', got 'mean'"),
    ({'span_arrangement': 'overlap'}, 'span_arrangement'), ({'top_p': 1.5}, r'top_p must be a number in \[0, 1\]'),
    ({'temp': 101.0}, r'temp must be a number in \[0, 100\]'), ({'top_k': 2.5}, 'top_k must be an integer'),
    ({'anneal_temp': 'yes'}, 'anneal_temp must be true or false'),
    ({'rescorer_weight': 2.0}, r'rescorer_weight must be a number in \[0, 1\]')])
def test_decoding_config_rejects_bad_values(kwargs, message):
  with pytest.raises(ValueError, match=message):
    decoding.DecodingConfig(**kwargs)


def test_generate_rejects_mismatched_inputs(inputs):
  params, cond, cond_mask = inputs
  with pytest.raises(ValueError, match='decoding_steps'):
    decoding.generate(params, cond, cond_mask, jax.random.key(0), lm_config=CONFIG,
                      decoding=decoding.DecodingConfig(decoding_steps=(2, 2)), length=30)
  with pytest.raises(ValueError, match='prompt'):
    decoding.generate(params, cond, cond_mask, jax.random.key(0), lm_config=CONFIG,
                      decoding=decoding.DecodingConfig(decoding_steps=STEPS), length=30,
                      prompt=jnp.zeros((2, CONFIG.n_q, 30), jnp.int32))
