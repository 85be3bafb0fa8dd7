"""Hybrid-MAGNeT (paper, section 3): the first frames autoregressively with a KV cache, the rest by MAGNeT's
masked decoding with those frames as a fixed prompt; one model, one compiled program.

Layout, from audiocraft's unfinished `hybrid_magnet` branch (lm_hybrid_magnet.py and solvers/hybrid_magnet.py),
following what it trains with:
  * the delay codebook pattern (`pattern.py`) over T + K sequence steps, level q's frame t predicted at
    step t + q by head q;
  * a semi-autoregressive self-attention mask: steps before the prefix length p attend causally; the others use
    the branch's per-level masked-decoding mask, shifted to the delay layout (step t + k attends to the steps
    holding level k's frames t' with |t - t'| <= subcodes_context, all of them for level 0; steps outside
    [k, k + T) attend everywhere);
  * the autoregressive phase feeds sequence steps 0 .. p - 1 and samples steps 1 .. p (MusicGen's sampling:
    temperature, top-k/top-p, a constant CFG coefficient), so level q's first p - q frames are known: a staircase
    prompt, exactly the clean prefix the branch's training (`_apply_nar_masks`) conditions on; masked decoding
    then fills level q from frame p - q on.
Deviations from the branch, whose inference code does not run: its masked-decoding forward feeds parallel codes
with a delay-layout mask; here the codes are delayed as in training. Its inference mask has no causal rows and its
sequence is padded to a multiple of 8 for xformers; here the training mask (causal rows before p) is used and the
sequence is exactly T + K steps.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp

from magnet_jax.decoding import sampling
from magnet_jax.decoding.config import DecodingConfig, output_length
from magnet_jax.decoding.decoder import DecodeState, LogitsFn, MaskedDecoder, check_inputs
from magnet_jax.decoding.guidance import cfg_forward, guide
from magnet_jax.decoding.pattern import delay_codes, level_predictions, undelay_codes
from magnet_jax.models import MagnetLM
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.lm import init_cache


@dataclasses.dataclass(frozen=True)
class HybridConfig:
  """The autoregressive prefix (sampling defaults: MusicGen's)."""
  prefix_length: int = 150     # p: sequence steps generated autoregressively; level q gets p - q frames.
  use_sampling: bool = True    # False (or temp 0): argmax.
  temp: float = 1.0            # softmax temperature.
  top_k: int = 250             # top-k sampling when > 0 (and top_p == 0).
  top_p: float = 0.0           # nucleus sampling when > 0.
  cfg_coef: float = 3.0        # constant CFG coefficient.

  def __post_init__(self):
    if self.prefix_length < 1 or self.temp < 0 or self.top_k < 0 or not 0.0 <= self.top_p <= 1.0:
      raise ValueError(f'hybrid needs prefix_length >= 1, temp >= 0, top_k >= 0, 0 <= top_p <= 1; got {self}')


def hybrid_attention_mask(config: MagnetConfig, prefix_length: int, length: int,
                          level: jax.Array | int) -> jax.Array:
  """The semi-autoregressive self-attention mask [1, 1, S, S] bool over S = T + K delayed steps.

  Args:
    config: the Hybrid-MAGNeT LM config (subcodes_context, n_q).
    prefix_length: p; steps < p attend causally.
    length: T.
    level: the level being decoded (may be traced).
  """
  steps = length + config.n_q
  rows = jnp.arange(steps)[:, None]
  cols = jnp.arange(steps)[None, :]
  frame, key_frame = rows - level, cols - 1 - level  # level `level`'s frame predicted at a row / held at a column
  local = (jnp.abs(frame - key_frame) <= config.subcodes_context) | (level == 0) | (config.subcodes_context < 0)
  decoded = (frame >= 0) & (frame < length)
  masked = jnp.where(decoded, (key_frame >= 0) & (key_frame < length) & local, True)
  return jnp.where(rows < prefix_length, cols <= rows, masked)[None, None]


def autoregressive_prefix(params, config: MagnetConfig, cond: jax.Array, cond_mask: jax.Array, rng: jax.Array, *,
                          hybrid: HybridConfig, length: int) -> jax.Array:
  """MusicGen-style sampling of sequence steps 1 .. p with a KV cache (audiocraft's `LMModel.generate`).

  Args:
    params, config: the LM (run causally whatever `config.causal` says).
    cond, cond_mask: [B, S, Dt], [B, S] conditions (null rows added here for CFG).
    rng: PRNG key (split into one per example) or [B] keys; example b's step s samples with fold_in(key_b, s).
    hybrid: prefix length and sampling.
    length: T.

  Returns:
    codes [B, K, T] int32: level q's frames t < p - q, mask_id (= the special token) elsewhere.
  """
  batch, levels, steps = cond.shape[0], config.n_q, hybrid.prefix_length
  lm = MagnetLM(config)
  decode = cfg_forward(lambda column, c, m, cache, index: lm.apply(
      {'params': params}, column[..., None], c, m, cache, index, method=MagnetLM.decode), cond, cond_mask)
  use_sampling = hybrid.use_sampling and hybrid.temp > 0
  frame_exists = lambda s: (s - jnp.arange(levels) >= 0) & (s - jnp.arange(levels) < length)  # level q at step s
  keys = rng if rng.ndim else jax.random.split(rng, batch)
  choose = lambda key, logits, probs: sampling.sample(key, logits, probs, use_sampling=use_sampling,
                                                       top_k=hybrid.top_k, top_p=hybrid.top_p)[0]

  def forward(column: jax.Array, cache, index: jax.Array | int):
    """column [B, K] at step `index` -> guided logits [B, K, V] for step index + 1."""
    logits, cache = decode(column, cache, index)
    return guide(logits[:, :, 0], hybrid.cfg_coef), cache

  def next_column(logits: jax.Array, step: jax.Array) -> jax.Array:
    """Tokens [B, K] for sequence step `step` + 1 from the logits of step `step`."""
    probs = jax.nn.softmax(logits / (hybrid.temp if use_sampling else 1.0), axis=-1)
    tokens = jax.vmap(choose)(jax.vmap(lambda key: jax.random.fold_in(key, step))(keys), logits, probs)
    return jnp.where(frame_exists(step), tokens, config.card)

  sequence = jnp.full((batch, levels, length + levels), config.card, jnp.int32)
  logits, cache = forward(sequence[:, :, 0], init_cache(config, 2 * batch, steps), 0)  # fills the text keys

  def body(step, carry):
    sequence, cache, logits = carry
    column = next_column(logits, step - 1)
    logits, cache = forward(column, cache, step)
    return jax.lax.dynamic_update_index_in_dim(sequence, column, step, axis=2), cache, logits

  sequence, _, logits = jax.lax.fori_loop(1, steps, body, (sequence, cache, logits))
  sequence = jax.lax.dynamic_update_index_in_dim(sequence, next_column(logits, steps - 1), steps, axis=2)
  return undelay_codes(sequence, length)


def hybrid_logits_fn(params, config: MagnetConfig, cond: jax.Array, cond_mask: jax.Array, prefix_length: int,
                     length: int) -> LogitsFn:
  """Hybrid-MAGNeT's masked-decoding forward as a `decoding.LogitsFn` (delayed codes, semi-AR mask)."""
  lm = MagnetLM(config)
  forward = cfg_forward(lambda sequence, c, m, level: lm.apply(
      {'params': params}, sequence, c, m, level, hybrid_attention_mask(config, prefix_length, length, level),
      method=MagnetLM.level_logits), cond, cond_mask)

  def logits_fn(codes: jax.Array, level: jax.Array) -> jax.Array:
    return level_predictions(forward(delay_codes(codes, config.card), level), level, length)

  return logits_fn


def hybrid_decode(params, cond: jax.Array, cond_mask: jax.Array, rng: jax.Array, *, lm_config: MagnetConfig,
                  decoding: DecodingConfig, hybrid: HybridConfig, length: int) -> DecodeState:
  """Hybrid-MAGNeT generation, traceable: autoregressive prefix, then masked decoding (for programs that compose it,
  e.g. with the codec decode; `generate` is its jitted form).

  Args:
    params: Hybrid-MAGNeT LM params (MagnetLM layout, non-causal config).
    cond, cond_mask: [B, S, Dt], [B, S] conditions.
    rng: PRNG key, or [B] keys (one per example).
    lm_config, decoding: as in `decoding.generate`.
    hybrid: the autoregressive prefix.
    length: frames (trimmed like `decoding.generate`); must exceed hybrid.prefix_length.

  Returns:
    The final `DecodeState` (codes [B, K, T] int32, `bad_step` for `check_finite`).
  """
  check_inputs(lm_config, decoding, cond, cond_mask)
  length = output_length(length, lm_config.span_len, decoding.span_arrangement)
  if hybrid.prefix_length >= length:
    raise ValueError(f'hybrid.prefix_length={hybrid.prefix_length} must be < the generated length {length}')
  if hybrid.top_k > lm_config.card:
    raise ValueError(f'hybrid.top_k={hybrid.top_k} exceeds card={lm_config.card}')
  if rng.ndim:
    ar_rng, masked_rng = jax.vmap(jax.random.split, out_axes=1)(rng)
  else:
    ar_rng, masked_rng = jax.random.split(rng)
  codes = autoregressive_prefix(params, lm_config, cond, cond_mask, ar_rng, hybrid=hybrid, length=length)
  staircase = jnp.arange(length) < hybrid.prefix_length - jnp.arange(lm_config.n_q)[:, None]  # [K, T]
  decoder = MaskedDecoder(decoding, lm_config.mask_id, lm_config.span_len, length)
  logits_fn = hybrid_logits_fn(params, lm_config, cond, cond_mask, hybrid.prefix_length, length)
  return decoder.run(decoder.init(codes, jnp.broadcast_to(staircase, codes.shape), masked_rng), logits_fn)


@functools.partial(jax.jit, static_argnames=('lm_config', 'decoding', 'hybrid', 'length'))
def generate(params, cond: jax.Array, cond_mask: jax.Array, rng: jax.Array, *, lm_config: MagnetConfig,
             decoding: DecodingConfig, hybrid: HybridConfig, length: int) -> jax.Array:
  """Hybrid-MAGNeT generation in one compiled program: codes [B, K, T] int32 (see `hybrid_decode`)."""
  return hybrid_decode(params, cond, cond_mask, rng, lm_config=lm_config, decoding=decoding, hybrid=hybrid,
                       length=length).codes
