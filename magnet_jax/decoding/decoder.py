"""MAGNeT's iterative decoding compiled into one XLA program (audiocraft's `MagnetLMModel._generate_magnet`).

Levels are decoded one after another, level k in `decoding_steps[k]` steps. All sum(decoding_steps) steps run in
one `lax.fori_loop` whose body reads its level, mask probability, CFG coefficient and temperature from per-step
tables computed on the host with the reference's formulas; the level index is traced and selects the attention mask
and output head inside the model. Masks are chosen by ranking (static shapes); example b samples step i with
`fold_in(rng[b], i)`, so its random draws do not depend on the rest of the batch. The given frames (a prefix prompt, or
any known frames for infilling and long-form windows) are data, not shapes: one program serves them all.

Step i of level k (n = decoding_steps[k], j = i's index within the level), as in the reference:
  1. mask_p = cos(pi/2 * linspace(0, 1, n)[j]); re-mask the max(int(mask_p * n_to_gen), 1) highest-scoring spans
     (scores reset at a level's first step: 0, or DONT_REMASK_SCORE on spans given entirely; n_to_gen counts the
     others).
  2. one forward of [cond; null] -> logits = uncond + (cond - uncond) * (mask_p * max_cfg + (1 - mask_p) * min_cfg).
  3. probs = softmax(logits / max(temp * (n - 1 - j) / n, 0.01)); sample (top-p / top-k / multinomial / argmax)
     the masked frames.
  4. score the spans re-masked at this step from the sampled tokens' probabilities (optionally mixed with a
     rescorer's, see `rescoring.py`); all other spans get DONT_REMASK_SCORE.
The first step whose guided logits are not finite is carried in the state (`check_finite` reports it).
"""
import dataclasses
import functools
from collections.abc import Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.decoding import sampling, spans
from magnet_jax.decoding.config import DecodingConfig, check_config
from magnet_jax.decoding.guidance import Uncond, cfg_forward, guide
from magnet_jax.decoding.mask_schedule import num_masked, step_tables
from magnet_jax.models import MagnetLM
from magnet_jax.models.config import MagnetConfig

DONT_REMASK_SCORE = -1e4  # audiocraft's DONT_REMASK_ME_SCORE: frames/spans that must keep their tokens.

# (codes [B, K, T] int32, level: int32 scalar) -> level logits [2B, T, V] float32 of [conditions; null conditions].
LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
# (codes [B, K, T] int32, level: int32 scalar) -> probability of codes[:, level] under an external model, [B, T].
RescoreFn = Callable[[jax.Array, jax.Array], jax.Array]
# (steps done: int32 scalar) -> bool scalar, True to skip the remaining steps: a host callback (`MaskedDecoder.run`).
StepHook = Callable[[jax.Array], jax.Array]


@flax.struct.dataclass
class DecodeState:
  """The decoding loop's carry."""
  codes: jax.Array     # [B, K, T] int32: codes so far; mask_id (= card) where not decoded yet.
  known: jax.Array     # [B, K, T] bool: given frames (prompt, context), kept as they are and never re-masked.
  scores: jax.Array    # [B, N] float32: re-masking priority of the current level's spans (N = T // span_len) or
  #                      frames (N = T); higher = masked first; DONT_REMASK_SCORE = keep.
  rng: jax.Array       # [B] PRNG keys, one per example; step i samples example b with fold_in(rng[b], i).
  bad_step: jax.Array  # int32 scalar: the first step whose guided logits held NaN or inf; -1 while none did.


def _chunk_frozen(known: jax.Array, span_len: int) -> jax.Array:
  return known.reshape(known.shape[0], -1, span_len).all(axis=-1)


def _chunk_remask(scores: jax.Array, count: jax.Array, span_len: int) -> tuple[jax.Array, jax.Array]:
  selected = spans.top_k_mask(scores, count[:, None])
  return selected, jnp.repeat(selected, span_len, axis=-1)


def _chunk_scores(token_probs, selected, masked, span_len: int, span_scoring: str) -> jax.Array:
  return jnp.where(selected, spans.span_scores(token_probs, span_len, span_scoring), DONT_REMASK_SCORE)


def _stride1_remask(scores: jax.Array, count: jax.Array, span_len: int) -> tuple[jax.Array, jax.Array]:
  frames = spans.least_probable_span_mask(scores, count, span_len)
  return frames, frames


def _token_remask(scores: jax.Array, count: jax.Array, span_len: int) -> tuple[jax.Array, jax.Array]:
  selected = spans.top_k_mask(scores, count[:, None])
  return selected, selected


def _frame_scores(token_probs, selected, masked, span_len: int, span_scoring: str) -> jax.Array:
  return jnp.where(masked, -jnp.log(token_probs), DONT_REMASK_SCORE)


@dataclasses.dataclass(frozen=True)
class SpanMode:
  """How one span arrangement re-masks: its score units N (whole spans, or frames) and what each step does with
  them. Functions of (..., span_len) so one table serves every model."""
  whole_spans: bool  # T must be a whole number of spans, one score per span (N = T // span_len); else N = T
  frozen: Callable[[jax.Array, int], jax.Array]  # known [B, T] -> [B, N] units given entirely
  remask: Callable[[jax.Array, jax.Array, int], tuple[jax.Array, jax.Array]]  # (scores [B, N], count [B]) ->
  #                                                     (selected units [B, N], frames to re-mask [B, T])
  scores: Callable[..., jax.Array]  # (token probs [B, T], selected [B, N], masked [B, T], span_len, span_scoring)
  #                                   -> next scores [B, N]


SPAN_MODES = {
    'chunks': SpanMode(True, _chunk_frozen, _chunk_remask, _chunk_scores),  # non-overlapping spans
    'stride1': SpanMode(False, lambda known, span_len: known, _stride1_remask, _frame_scores),  # overlapping spans
    'tokens': SpanMode(False, lambda known, span_len: known, _token_remask, _frame_scores),  # span_len 1
}
ARRANGEMENTS = {'nonoverlap': 'chunks', 'stride1': 'stride1'}  # DecodingConfig.span_arrangement -> SPAN_MODES


@dataclasses.dataclass(frozen=True)
class MaskedDecoder:
  """The static description of one decoding run; `step` is the loop body, `run` the loop.

  Which frames are given is data (`DecodeState.known`), not part of this description, so a prefix prompt
  (audiocraft's), Hybrid-MAGNeT's staircase, infill spans and long-form windows all run one compiled program. A
  span ('nonoverlap') or frame ('stride1', span_len 1) whose frames are all known is frozen (DONT_REMASK_SCORE)
  and does not count among those to generate; a span that is only partly known is decoded, its known frames kept:
  for a P-frame prefix this is audiocraft's `n_prompt_chunks = P // span_len`.
  """
  decoding: DecodingConfig
  mask_id: int
  span_len: int
  length: int  # T, already trimmed (`output_length`).

  @property
  def mode(self) -> str:
    """The `SPAN_MODES` name: 'chunks' (non-overlapping spans), 'stride1' (overlapping spans) or 'tokens'
    (span_len 1)."""
    return 'tokens' if self.span_len == 1 else ARRANGEMENTS[self.decoding.span_arrangement]

  @property
  def span_mode(self) -> SpanMode:
    return SPAN_MODES[self.mode]

  @property
  def num_scores(self) -> int:
    return self.length // self.span_len if self.span_mode.whole_spans else self.length

  @functools.cached_property
  def tables(self) -> dict[str, np.ndarray]:
    return step_tables(self.decoding)

  def init(self, codes: jax.Array, known: jax.Array, rng: jax.Array) -> DecodeState:
    """The loop's initial state.

    Args:
      codes: [B, K, T] ints; read where `known`, anything elsewhere.
      known: [B, K, T] bool, or [B, T] for every level.
      rng: one typed key (`jax.random.key`, split into one per example) or [B] keys.
    """
    if self.span_mode.whole_spans and codes.shape[-1] % self.span_len:
      raise ValueError(f'{codes.shape[-1]} frames is not a whole number of {self.span_len}-frame spans')
    known = jnp.broadcast_to(known[:, None] if known.ndim == 2 else known, codes.shape)
    rng = rng if rng.ndim else jax.random.split(rng, codes.shape[0])
    return DecodeState(codes=jnp.where(known, codes, self.mask_id).astype(jnp.int32), known=known,
                       scores=jnp.zeros((codes.shape[0], self.num_scores), jnp.float32), rng=rng,
                       bad_step=jnp.int32(-1))

  def _sample(self, i: jax.Array, rng: jax.Array, logits: jax.Array, probs: jax.Array):
    """Each example's tokens [B, T] and their probabilities from its own key, whatever else is in the batch."""
    sample = functools.partial(sampling.sample, use_sampling=self.decoding.use_sampling, top_k=self.decoding.top_k,
                               top_p=self.decoding.top_p)
    return jax.vmap(lambda key, lg, pr: sample(jax.random.fold_in(key, i), lg, pr))(rng, logits, probs)

  def step(self, i: jax.Array, state: DecodeState, logits_fn: LogitsFn,
           rescore_fn: RescoreFn | None = None) -> DecodeState:
    """Decoding step i (traced int32) of the flattened schedule."""
    tables = {k: jnp.asarray(v) for k, v in self.tables.items()}
    level = tables['level'][i]
    known = jax.lax.dynamic_index_in_dim(state.known, level, axis=1, keepdims=False)  # [B, T]
    frozen = self.span_mode.frozen(known, self.span_len)
    scores = jnp.where(tables['first'][i], jnp.where(frozen, DONT_REMASK_SCORE, 0.0), state.scores)
    count = num_masked(tables['mask_p'][i], self.num_scores - jnp.sum(frozen, axis=-1))
    selected, remask = self.span_mode.remask(scores, count, self.span_len)
    row = jax.lax.dynamic_index_in_dim(state.codes, level, axis=1, keepdims=False)  # [B, T]
    row = jnp.where(remask & ~known, self.mask_id, row)
    masked = row == self.mask_id
    logits = guide(logits_fn(jax.lax.dynamic_update_index_in_dim(state.codes, row, level, 1), level),
                   tables['cfg_coef'][i])
    bad_step = jnp.where((state.bad_step < 0) & ~jnp.all(jnp.isfinite(logits)), i, state.bad_step)
    probs = jax.nn.softmax(logits / tables['temperature'][i], axis=-1)
    tokens, token_probs = self._sample(i, state.rng, logits, probs)
    codes = jax.lax.dynamic_update_index_in_dim(state.codes, jnp.where(masked, tokens, row), level, 1)
    if rescore_fn is not None:
      weight = self.decoding.rescorer_weight
      token_probs = weight * rescore_fn(codes, level) + (1 - weight) * token_probs
    scores = self.span_mode.scores(token_probs, selected, masked, self.span_len, self.decoding.span_scoring)
    return state.replace(codes=codes, scores=scores, bad_step=bad_step)

  def run(self, state: DecodeState, logits_fn: LogitsFn, rescore_fn: RescoreFn | None = None,
          on_step: StepHook | None = None) -> DecodeState:
    """All steps in one `fori_loop`.

    `on_step` (None: a program without host callbacks) is called after each step with the number of steps done;
    once it returns True the remaining iterations skip their step (`lax.cond`), so a cancelled run costs no more
    forwards. Its callback must be ordered (`io_callback(..., ordered=True)`) for the host to see steps in order.
    """
    if on_step is None:
      return jax.lax.fori_loop(0, self.decoding.num_steps, lambda i, s: self.step(i, s, logits_fn, rescore_fn), state)

    def body(i, carry):
      state, stopped = carry
      advance = lambda s: (self.step(i, s, logits_fn, rescore_fn), on_step(i + 1).astype(bool))
      return jax.lax.cond(stopped, lambda s: (s, stopped), advance, state)

    return jax.lax.fori_loop(0, self.decoding.num_steps, body, (state, jnp.bool_(False)))[0]


def check_finite(bad_step: int, decoding: DecodingConfig) -> None:
  """Raises FloatingPointError naming the step whose logits held NaN or inf (`DecodeState.bad_step`; -1 = none)."""
  if bad_step < 0:
    return
  level = int(np.searchsorted(np.cumsum(decoding.decoding_steps), bad_step, side='right'))
  within = bad_step - sum(decoding.decoding_steps[:level])
  raise FloatingPointError(
      f'the LM produced non-finite logits (NaN or inf) at decoding step {bad_step + 1} of {decoding.num_steps} '
      f'(level {level}, step {within + 1} of {decoding.decoding_steps[level]}); with bfloat16/float16 compute '
      'try float32 (dtype=float32 / --dtype float32), otherwise the weights hold NaN or overflow')


def magnet_logits_fn(params, config: MagnetConfig, cond: jax.Array, cond_mask: jax.Array,
                     uncond: Uncond = None) -> LogitsFn:
  """The MAGNeT LM as a `LogitsFn`: one forward of [codes; codes] with [cond; uncond (default null)], level head
  only."""
  lm = MagnetLM(config)
  return cfg_forward(lambda codes, c, m, level: lm.apply({'params': params}, codes, c, m, level,
                                                         method=MagnetLM.level_logits), cond, cond_mask, uncond)


def initial_context(batch: int, config: MagnetConfig, length: int, prompt: jax.Array | None = None,
                    known_codes: jax.Array | None = None,
                    known: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """The given frames of a run of T = `length` frames: (codes [B, K, T] int32, known [B, K, T] bool).

  Args:
    batch, config, length: B, the LM (K, mask id), T.
    prompt: a [B, K, P] prefix, P < T (audiocraft's `prompt`).
    known_codes, known: [B, K, >= T] codes and the [B, T] or [B, K, T] frames of them that are given (their
      first T frames are used); exclusive with `prompt`.

  Returns:
    mask_id wherever nothing is given. Nothing given at all: text-only generation.
  """
  shape = (batch, config.n_q, length)
  if prompt is not None:
    if known_codes is not None or known is not None:
      raise ValueError('give either a prefix prompt or known_codes/known, not both')
    if prompt.ndim != 3 or prompt.shape[:2] != shape[:2] or prompt.shape[-1] >= length:
      raise ValueError(f'prompt must be [B={batch}, K={config.n_q}, P < {length}], got {prompt.shape}')
    known_codes = jnp.pad(prompt, ((0, 0), (0, 0), (0, length - prompt.shape[-1])))
    known = jnp.broadcast_to(jnp.arange(length) < prompt.shape[-1], (batch, length))
  if known_codes is None or known is None:
    if known_codes is not None or known is not None:
      raise ValueError('known_codes and known go together')
    return jnp.full(shape, config.mask_id, jnp.int32), jnp.zeros(shape, bool)
  if known_codes.ndim != 3 or known_codes.shape[:2] != shape[:2] or known_codes.shape[-1] < length:
    raise ValueError(f'known_codes must be [B={batch}, K={config.n_q}, >= {length}], got {known_codes.shape}')
  if known.shape not in ((batch, known_codes.shape[-1]), known_codes.shape):
    raise ValueError(f'known must be [B, T] or [B, K, T] like known_codes {known_codes.shape}, got {known.shape}')
  known = jnp.broadcast_to(known[:, None] if known.ndim == 2 else known, known_codes.shape)[..., :length]
  codes = jnp.where(known, known_codes[..., :length].astype(jnp.int32), config.mask_id)
  return codes, known


def check_inputs(config: MagnetConfig, decoding: DecodingConfig, cond: jax.Array, cond_mask: jax.Array) -> None:
  """Raises ValueError for a causal LM, a decoding_steps/n_q mismatch, top_k > card or bad conditions."""
  check_config(config, decoding)
  if cond.ndim != 3 or cond.shape[-1] != config.text_dim or cond.shape[:2] != cond_mask.shape:
    raise ValueError(f'cond must be [B, S, Dt={config.text_dim}] and cond_mask [B, S]; got {cond.shape}, '
                     f'{cond_mask.shape}')
