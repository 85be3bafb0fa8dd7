"""Rescoring MAGNeT's sampled tokens with an external autoregressive LM (paper, section 3; no upstream code).

After each decoding step, a pretrained MusicGen-style LM (causal `MagnetLM`, delay codebook pattern) runs one
teacher-forced forward over the current codes and gives the probability of each token of the level being decoded.
The span confidence then uses p = w * p_rescorer + (1 - w) * p_magnet (w = `DecodingConfig.rescorer_weight`;
w = 0 is plain MAGNeT, bit for bit). Choices the paper leaves open, made here:
  * levels not decoded yet hold the mask id, which is MusicGen's special token (the only token it knows for
    "no code here");
  * the rescorer reads the same text states as MAGNeT, with its own CFG coefficient (`rescorer_cfg_coef`,
    MusicGen's 3.0 by default; 1.0 skips the null batch), at temperature 1.
"""
import jax
import jax.numpy as jnp

from magnet_jax.decoding.guidance import Uncond, cfg_forward, guide
from magnet_jax.decoding.pattern import delay_codes, level_predictions
from magnet_jax.models import MagnetLM
from magnet_jax.models.config import MagnetConfig


def teacher_forced_logits(params, config: MagnetConfig, codes: jax.Array, cond: jax.Array,
                          cond_mask: jax.Array) -> jax.Array:
  """Every level's next-token logits of a causal LM on the delayed codes: [B, K, T] -> [B, K, T, V].

  Equals audiocraft's `LMModel.compute_predictions(codes, ...)` (delay pattern) where its mask is valid, and its
  `keep_only_valid_steps=False` logits everywhere.
  """
  length = codes.shape[-1]
  logits = MagnetLM(config).apply({'params': params}, delay_codes(codes, config.card), cond, cond_mask)
  return jnp.stack([logits[:, q, q:q + length] for q in range(config.n_q)], axis=1)


def rescorer_level_logits(params, config: MagnetConfig, codes: jax.Array, cond: jax.Array, cond_mask: jax.Array,
                          level: jax.Array | int) -> jax.Array:
  """Level `level`'s teacher-forced logits [B, T, V] (one head; `level` may be traced)."""
  logits = MagnetLM(config).apply({'params': params}, delay_codes(codes, config.card), cond, cond_mask, level,
                                  method=MagnetLM.level_logits)
  return level_predictions(logits, level, codes.shape[-1])


def rescore_fn(params, config: MagnetConfig, magnet_config: MagnetConfig, cond: jax.Array, cond_mask: jax.Array,
               cfg_coef: float, uncond: Uncond = None):
  """A `decoding.RescoreFn`: (codes [B, K, T], level) -> rescorer probability of codes[:, level], [B, T], guided
  against `uncond` (default: the null condition) as MAGNeT is.

  Raises:
    ValueError: the rescorer is not causal or does not share MAGNeT's codebooks or text-encoder width.
  """
  if not config.causal:
    raise ValueError('the rescorer must be an autoregressive LM config (causal=True)')
  mismatched = [f for f in ('n_q', 'card', 'text_dim') if getattr(config, f) != getattr(magnet_config, f)]
  if mismatched:
    raise ValueError(f'rescorer and MAGNeT configs disagree on {mismatched}: they must share codec and text encoder')
  level_logits = lambda codes, c, m, level: rescorer_level_logits(params, config, codes, c, m, level)
  if cfg_coef != 1.0:
    forward = cfg_forward(level_logits, cond, cond_mask, uncond)
    logits_of = lambda codes, level: guide(forward(codes, level), cfg_coef)
  else:  # no guidance: no null batch
    logits_of = lambda codes, level: level_logits(codes, cond, cond_mask, level)

  def token_probs(codes: jax.Array, level: jax.Array) -> jax.Array:
    logits = logits_of(codes, level)
    tokens = jax.lax.dynamic_index_in_dim(codes, level, axis=1, keepdims=False)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jnp.exp(jnp.take_along_axis(log_probs, tokens[..., None], axis=-1)[..., 0])

  return token_probs
