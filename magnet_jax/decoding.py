"""MAGNeT's iterative decoding compiled into one XLA program (audiocraft's `MagnetLMModel._generate_magnet`).

Levels are decoded one after another, level k in `decoding_steps[k]` steps. All sum(decoding_steps) steps run in
one `lax.fori_loop` whose body reads its level, mask count, CFG coefficient and temperature from per-step tables
computed on the host with the reference's formulas; the level index is traced and selects the attention mask and
output head inside the model. Masks are chosen by ranking (static shapes), randomness is `fold_in(rng, step)`.

Step i of level k (n = decoding_steps[k], j = i's index within the level), as in the reference:
  1. mask_p = cos(pi/2 * linspace(0, 1, n)[j]); re-mask the max(int(mask_p * n_to_gen), 1) highest-scoring spans
     (scores reset at a level's first step: 0, or DONT_REMASK_SCORE on the prompt).
  2. one forward of [cond; null] -> logits = uncond + (cond - uncond) * (mask_p * max_cfg + (1 - mask_p) * min_cfg).
  3. probs = softmax(logits / max(temp * (n - 1 - j) / n, 0.01)); sample (top-p / top-k / multinomial / argmax)
     the masked frames.
  4. score the spans re-masked at this step from the sampled tokens' probabilities (optionally mixed with a
     rescorer's, see `rescoring.py`); all other spans get DONT_REMASK_SCORE.
"""
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax import rescoring, sampling, span_scoring
from magnet_jax.config import MagnetConfig
from magnet_jax.guidance import guide, with_null_conditions
from magnet_jax.models import MagnetLM

DONT_REMASK_SCORE = -1e4  # audiocraft's DONT_REMASK_ME_SCORE: frames/spans that must keep their tokens.

# (codes [B, K, T] int32, level: int32 scalar) -> level logits [2B, T, V] float32 of [conditions; null conditions].
LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
# (codes [B, K, T] int32, level: int32 scalar) -> probability of codes[:, level] under an external model, [B, T].
RescoreFn = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
  """MAGNeT decoding hyperparameters (defaults: audiocraft's MAGNeT.set_generation_params / _generate_magnet)."""
  decoding_steps: tuple[int, ...] = (20, 10, 10, 10)  # steps per level (one entry per codebook).
  temp: float = 3.0                 # initial softmax temperature.
  top_k: int = 0                    # top-k sampling when > 0 (and top_p == 0).
  top_p: float = 0.9                # nucleus sampling when > 0 (wins over top_k).
  max_cfg_coef: float = 10.0        # CFG coefficient at the first step of a level (mask_p = 1).
  min_cfg_coef: float = 1.0         # CFG coefficient as mask_p -> 0.
  anneal_temp: bool = True          # temperature decays linearly to 0 (clamped at 0.01) within each level.
  span_scoring: str = 'max'         # 'max': 1 - max prob in span; 'prod': sum of -log probs ('nonoverlap' only).
  span_arrangement: str = 'nonoverlap'  # 'nonoverlap' spans (T trimmed to a multiple of span_len) | 'stride1'.
  use_sampling: bool = True         # False: argmax (greedy).
  rescorer_weight: float = 0.0      # w in w * p_rescorer + (1 - w) * p_magnet; 0 = plain MAGNeT.
  rescorer_cfg_coef: float = 3.0    # CFG of the rescorer's teacher-forced probabilities (MusicGen's default).

  def __post_init__(self):
    object.__setattr__(self, 'decoding_steps', tuple(int(s) for s in self.decoding_steps))
    if not self.decoding_steps or min(self.decoding_steps) < 1:
      raise ValueError(f'decoding.decoding_steps must be positive ints, got {self.decoding_steps}')
    if self.span_scoring not in ('max', 'prod'):
      raise ValueError(f"decoding.span_scoring={self.span_scoring!r}; expected 'max' or 'prod'")
    if self.span_arrangement not in ('nonoverlap', 'stride1'):
      raise ValueError(f"decoding.span_arrangement={self.span_arrangement!r}; expected 'nonoverlap' or 'stride1'")
    if self.temp < 0 or self.top_k < 0 or not 0.0 <= self.top_p <= 1.0:
      raise ValueError(f'decoding needs temp >= 0, top_k >= 0, 0 <= top_p <= 1; got temp={self.temp}, '
                       f'top_k={self.top_k}, top_p={self.top_p}')
    if not 0.0 <= self.rescorer_weight <= 1.0:
      raise ValueError(f'decoding.rescorer_weight must be in [0, 1], got {self.rescorer_weight}')

  @property
  def num_steps(self) -> int:
    return sum(self.decoding_steps)


def torch_linspace01(n: int) -> np.ndarray:
  """torch.linspace(0, 1, n) in float32, bit for bit (float32 step, both halves evaluated in float64)."""
  if n == 1:
    return np.zeros(1, np.float32)
  step = np.float64(np.float32(1) / np.float32(n - 1))
  i = np.arange(n)
  return np.where(i < n // 2, step * i, 1.0 - step * (n - 1 - i)).astype(np.float32)


def mask_schedule(n: int) -> np.ndarray:
  """float32 [n]: mask_p = cos(linspace(0, 1, n) * pi * 0.5) as the reference computes it in float32.

  The argument is rounded as torch rounds it; the cosine is correctly rounded, where torch's vectorised cosine can
  be 1 ulp away: the resulting mask counts were checked equal for n <= 60 steps and up to 1500 frames.
  """
  arg = (torch_linspace01(n) * np.float32(math.pi)) * np.float32(0.5)
  return np.cos(arg.astype(np.float64)).astype(np.float32)


def step_tables(decoding: DecodingConfig, num_to_generate: Sequence[int]) -> dict[str, np.ndarray]:
  """Per-step tables [sum(decoding_steps)] of the flattened schedule.

  Args:
    decoding: the config.
    num_to_generate: per level, the spans (nonoverlap) or frames (stride1 / span_len 1) outside the prompt.

  Returns:
    'stage' int32 level, 'first' bool (a level's first step), 'num_masked' int32, 'cfg_coef' float32,
    'temperature' float32 (already clamped at 0.01).
  """
  rows = []
  for stage, (n, to_gen) in enumerate(zip(decoding.decoding_steps, num_to_generate, strict=True)):
    for j, mask_p in enumerate(mask_schedule(n)):
      steps_left = n - 1 - j
      temp = decoding.temp * (steps_left / n) if decoding.anneal_temp else decoding.temp
      rows.append((stage, j == 0, max(int(mask_p * np.float32(to_gen)), 1),
                   float(mask_p) * decoding.max_cfg_coef + (1 - float(mask_p)) * decoding.min_cfg_coef,
                   max(temp, 1e-2)))
  stage, first, num_masked, cfg_coef, temperature = zip(*rows, strict=True)
  return {'stage': np.array(stage, np.int32), 'first': np.array(first), 'num_masked': np.array(num_masked, np.int32),
          'cfg_coef': np.array(cfg_coef, np.float32), 'temperature': np.array(temperature, np.float32)}


def output_length(length: int, span_len: int, span_arrangement: str) -> int:
  """Frames generated for a requested `length`: non-overlapping spans trim it to a multiple of span_len."""
  return (length // span_len) * span_len if span_len > 1 and span_arrangement == 'nonoverlap' else length


@flax.struct.dataclass
class DecodeState:
  """The decoding loop's carry."""
  codes: jax.Array   # [B, K, T] int32: codes so far; mask_id (= card) where not decoded yet.
  scores: jax.Array  # [B, N] float32: re-masking priority of the current level's spans (N = T // span_len) or
  #                    frames (N = T); higher = masked first; DONT_REMASK_SCORE = keep.
  rng: jax.Array     # PRNG key; step i samples with fold_in(rng, i).


@dataclasses.dataclass(frozen=True)
class MaskedDecoder:
  """The static description of one decoding run; `step` is the loop body, `run` the loop.

  prompt_lengths[k] frames of level k are given (fixed, never re-masked): a [B, K, P] prompt gives (P,) * K,
  Hybrid-MAGNeT's autoregressive prefix a staircase.
  """
  decoding: DecodingConfig
  mask_id: int
  span_len: int
  length: int                      # T, already trimmed (`output_length`).
  prompt_lengths: tuple[int, ...]  # per level.

  @property
  def mode(self) -> str:
    """'chunks' (non-overlapping spans), 'stride1' (overlapping spans) or 'tokens' (span_len 1)."""
    if self.span_len == 1:
      return 'tokens'
    return 'chunks' if self.decoding.span_arrangement == 'nonoverlap' else 'stride1'

  @property
  def num_scores(self) -> int:
    return self.length // self.span_len if self.mode == 'chunks' else self.length

  @functools.cached_property
  def tables(self) -> dict[str, np.ndarray]:
    """`step_tables` plus per-level 'initial_scores' [K, N] float32 and 'prompt' [K, T] bool."""
    unit = self.span_len if self.mode == 'chunks' else 1
    frozen = np.array([p // unit for p in self.prompt_lengths])
    tables = step_tables(self.decoding, [self.num_scores - f for f in frozen])
    positions = np.arange(self.num_scores)
    tables['initial_scores'] = np.where(positions < frozen[:, None], DONT_REMASK_SCORE, 0.0).astype(np.float32)
    tables['prompt'] = np.arange(self.length) < np.array(self.prompt_lengths)[:, None]
    return tables

  def init(self, codes: jax.Array, rng: jax.Array) -> DecodeState:
    """codes: [B, K, T] with the prompt in place and mask_id elsewhere."""
    return DecodeState(codes=codes, scores=jnp.zeros((codes.shape[0], self.num_scores), jnp.float32), rng=rng)

  def _remask(self, scores: jax.Array, num_masked: jax.Array) -> tuple[jax.Array, jax.Array]:
    """-> (selected spans or frames [B, N], frames to re-mask [B, T])."""
    if self.mode == 'stride1':
      frames = span_scoring.least_probable_span_mask(scores, num_masked, self.span_len)
      return frames, frames
    selected = span_scoring.top_k_mask(scores, num_masked)
    return selected, jnp.repeat(selected, self.span_len, axis=-1) if self.mode == 'chunks' else selected

  def _scores(self, token_probs: jax.Array, selected: jax.Array, masked: jax.Array) -> jax.Array:
    if self.mode == 'chunks':
      scores = span_scoring.span_scores(token_probs, self.span_len, self.decoding.span_scoring)
      return jnp.where(selected, scores, DONT_REMASK_SCORE)
    return jnp.where(masked, -jnp.log(token_probs), DONT_REMASK_SCORE)

  def step(self, i: jax.Array, state: DecodeState, logits_fn: LogitsFn,
           rescore_fn: RescoreFn | None = None) -> DecodeState:
    """Decoding step i (traced int32) of the flattened schedule."""
    tables = {k: jnp.asarray(v) for k, v in self.tables.items()}
    stage = tables['stage'][i]
    scores = jnp.where(tables['first'][i], tables['initial_scores'][stage], state.scores)
    selected, remask = self._remask(scores, tables['num_masked'][i])
    row = jax.lax.dynamic_index_in_dim(state.codes, stage, axis=1, keepdims=False)  # [B, T]
    row = jnp.where(remask & ~tables['prompt'][stage], self.mask_id, row)
    masked = row == self.mask_id
    logits = guide(logits_fn(jax.lax.dynamic_update_index_in_dim(state.codes, row, stage, 1), stage),
                   tables['cfg_coef'][i])
    probs = jax.nn.softmax(logits / tables['temperature'][i], axis=-1)
    tokens, token_probs = sampling.sample(
        jax.random.fold_in(state.rng, i), logits, probs, use_sampling=self.decoding.use_sampling,
        top_k=self.decoding.top_k, top_p=self.decoding.top_p)
    codes = jax.lax.dynamic_update_index_in_dim(state.codes, jnp.where(masked, tokens, row), stage, 1)
    if rescore_fn is not None:
      weight = self.decoding.rescorer_weight
      token_probs = weight * rescore_fn(codes, stage) + (1 - weight) * token_probs
    return DecodeState(codes=codes, scores=self._scores(token_probs, selected, masked), rng=state.rng)

  def run(self, state: DecodeState, logits_fn: LogitsFn, rescore_fn: RescoreFn | None = None) -> DecodeState:
    """All steps in one `fori_loop`."""
    return jax.lax.fori_loop(0, self.decoding.num_steps,
                             lambda i, s: self.step(i, s, logits_fn, rescore_fn), state)


def magnet_logits_fn(params, config: MagnetConfig, cond: jax.Array, cond_mask: jax.Array) -> LogitsFn:
  """The MAGNeT LM as a `LogitsFn`: one forward of [codes; codes] with [cond; null], level head only."""
  lm = MagnetLM(config)
  cfg_cond, cfg_mask = with_null_conditions(cond, cond_mask)

  def logits_fn(codes: jax.Array, stage: jax.Array) -> jax.Array:
    return lm.apply({'params': params}, jnp.concatenate([codes, codes]), cfg_cond, cfg_mask, stage,
                    method=MagnetLM.level_logits)

  return logits_fn


def initial_codes(batch: int, config: MagnetConfig, length: int, prompt: jax.Array | None) -> jax.Array:
  """[B, K, T] int32: the prompt's frames, mask_id elsewhere."""
  codes = jnp.full((batch, config.n_q, length), config.mask_id, jnp.int32)
  if prompt is None:
    return codes
  if prompt.ndim != 3 or prompt.shape[:2] != (batch, config.n_q) or prompt.shape[-1] >= length:
    raise ValueError(f'prompt must be [B={batch}, K={config.n_q}, P < {length}], got {prompt.shape}')
  return codes.at[..., :prompt.shape[-1]].set(prompt.astype(jnp.int32))


def check_inputs(config: MagnetConfig, decoding: DecodingConfig, cond: jax.Array, cond_mask: jax.Array) -> None:
  """Raises ValueError for a causal LM, a decoding_steps/n_q mismatch, top_k > card or bad conditions."""
  if config.causal:
    raise ValueError('MAGNeT decoding needs a non-causal LM config (causal=True is the autoregressive rescorer)')
  if len(decoding.decoding_steps) != config.n_q:
    raise ValueError(f'decoding.decoding_steps has {len(decoding.decoding_steps)} entries for n_q={config.n_q} '
                     'levels')
  if decoding.top_k > config.card:
    raise ValueError(f'decoding.top_k={decoding.top_k} exceeds card={config.card}')
  if cond.ndim != 3 or cond.shape[-1] != config.text_dim or cond.shape[:2] != cond_mask.shape:
    raise ValueError(f'cond must be [B, S, Dt={config.text_dim}] and cond_mask [B, S]; got {cond.shape}, '
                     f'{cond_mask.shape}')


@functools.partial(jax.jit, static_argnames=('lm_config', 'decoding', 'length', 'rescorer_config'))
def generate(params, cond: jax.Array, cond_mask: jax.Array, rng: jax.Array, *, lm_config: MagnetConfig,
             decoding: DecodingConfig, length: int, prompt: jax.Array | None = None, rescorer_params=None,
             rescorer_config: MagnetConfig | None = None) -> jax.Array:
  """Text-conditioned MAGNeT generation in one compiled program (compiled once per shapes and configs).

  Args:
    params: MagnetLM params.
    cond: [B, S, Dt] text-encoder states of the conditions (the null rows for CFG are built here).
    cond_mask: [B, S] bool.
    rng: PRNG key.
    lm_config: the (non-causal) MAGNeT LM config.
    decoding: decoding hyperparameters.
    length: frames to generate (audiocraft's max_gen_len); 'nonoverlap' trims it to a multiple of span_len.
    prompt: optional [B, K, P] codes (P < T) kept fixed at the start of every level.
    rescorer_params, rescorer_config: optional causal (MusicGen) LM rescoring each step's tokens with weight
      `decoding.rescorer_weight` (see `rescoring.py`); it reads the same cond.

  Returns:
    codes [B, K, T] int32, T = `output_length(length, ...)`.
  """
  check_inputs(lm_config, decoding, cond, cond_mask)
  length = output_length(length, lm_config.span_len, decoding.span_arrangement)
  codes = initial_codes(cond.shape[0], lm_config, length, prompt)
  prompt_length = 0 if prompt is None else prompt.shape[-1]
  decoder = MaskedDecoder(decoding, lm_config.mask_id, lm_config.span_len, length, (prompt_length,) * lm_config.n_q)
  rescore_fn = None
  if rescorer_params is not None:
    rescore_fn = rescoring.rescore_fn(rescorer_params, rescorer_config, lm_config, cond, cond_mask,
                                      decoding.rescorer_cfg_coef)
  state = decoder.run(decoder.init(codes, rng), magnet_logits_fn(params, lm_config, cond, cond_mask), rescore_fn)
  return state.codes
