"""MAGNeT generation as traceable and jitted functions: the decoder core (`decoder.py`) composed with the optional
rescoring extension (`rescoring.py`), which the core itself does not import."""
import functools

import jax

from magnet_jax.decoding import rescoring
from magnet_jax.decoding.config import DecodingConfig, output_length
from magnet_jax.decoding.decoder import (
    DecodeState,
    MaskedDecoder,
    StepHook,
    check_inputs,
    initial_context,
    magnet_logits_fn,
)
from magnet_jax.decoding.guidance import Uncond
from magnet_jax.models.config import MagnetConfig


def masked_decode(params, cond: jax.Array, cond_mask: jax.Array, rng: jax.Array, *, lm_config: MagnetConfig,
                  decoding: DecodingConfig, codes: jax.Array, known: jax.Array, rescorer_params=None,
                  rescorer_config: MagnetConfig | None = None, uncond: Uncond = None,
                  on_step: StepHook | None = None) -> DecodeState:
  """MAGNeT's masked decoding of every frame that is not `known`: the traceable core of `generate`, for programs
  that compose it (e.g. with the codec decode).

  Args:
    params, cond, cond_mask, rng, lm_config, decoding, rescorer_params, rescorer_config: as in `generate`; rng may
      also be [B] keys, one per example.
    codes: [B, K, T] given codes (T a whole number of spans for 'nonoverlap'), read where `known`.
    known: [B, T] or [B, K, T] bool (e.g. from `initial_context`).
    uncond: the unconditional half of classifier-free guidance as data, (states [B, S, Dt], mask [B, S]) shaped
      like cond (e.g. a negative prompt's); None: the null condition.
    on_step: a host callback after each step that can stop the run (`MaskedDecoder.run`); None: none.

  Returns:
    The final `DecodeState`: codes [B, K, T] int32, and `bad_step` for `check_finite`.
  """
  check_inputs(lm_config, decoding, cond, cond_mask)
  decoder = MaskedDecoder(decoding, lm_config.mask_id, lm_config.span_len, codes.shape[-1])
  rescore_fn = None
  if rescorer_params is not None:
    rescore_fn = rescoring.rescore_fn(rescorer_params, rescorer_config, lm_config, cond, cond_mask,
                                      decoding.rescorer_cfg_coef, uncond)
  return decoder.run(decoder.init(codes, known, rng), magnet_logits_fn(params, lm_config, cond, cond_mask, uncond),
                     rescore_fn, on_step)


@functools.partial(jax.jit, static_argnames=('lm_config', 'decoding', 'length', 'rescorer_config'))
def generate(params, cond: jax.Array, cond_mask: jax.Array, rng: jax.Array, *, lm_config: MagnetConfig,
             decoding: DecodingConfig, length: int, prompt: jax.Array | None = None,
             known_codes: jax.Array | None = None, known: jax.Array | None = None, rescorer_params=None,
             rescorer_config: MagnetConfig | None = None) -> jax.Array:
  """Text-conditioned MAGNeT generation in one compiled program (compiled once per shapes and configs).

  Args:
    params: MagnetLM params.
    cond: [B, S, Dt] text-encoder states of the conditions (the null rows for CFG are built here).
    cond_mask: [B, S] bool.
    rng: a typed PRNG key (`jax.random.key`), split into one key per example.
    lm_config: the (non-causal) MAGNeT LM config.
    decoding: decoding hyperparameters.
    length: frames to generate (audiocraft's max_gen_len); 'nonoverlap' trims it to a multiple of span_len.
    prompt: optional [B, K, P] codes (P < T) kept fixed at the start of every level.
    known_codes, known: instead of `prompt`, any given frames: [B, K, >= T] codes and the [B, T] or [B, K, T] bool
      frames of them to keep (infilling, outpainting); see `initial_context`.
    rescorer_params, rescorer_config: optional causal (MusicGen) LM rescoring each step's tokens with weight
      `decoding.rescorer_weight` (see `rescoring.py`); it reads the same cond.

  Returns:
    codes [B, K, T] int32, T = `output_length(length, ...)`. Non-finite logits are not reported here (use
    `masked_decode` and `check_finite`).
  """
  length = output_length(length, lm_config.span_len, decoding.span_arrangement)
  codes, known = initial_context(cond.shape[0], lm_config, length, prompt, known_codes, known)
  return masked_decode(params, cond, cond_mask, rng, lm_config=lm_config, decoding=decoding, codes=codes,
                       known=known, rescorer_params=rescorer_params, rescorer_config=rescorer_config).codes

