"""Text -> audio with MAGNeT: text encoder -> masked decoding -> codec decode, one XLA program per window.

`MagnetPipeline.generate(descriptions, duration, **sampling)` mirrors audiocraft's `MAGNeT.generate` and
`generate_continuation` its audio-prompt continuation; `infill`, `outpaint`, `generate_loop`, durations past the
model's window and streaming (`stream`) go further. They all run one compiled program per (batch bucket, text
bucket, window length, sampling config, decoding strategy; `generation.window_program`): a window's tokens by the
pipeline's decoding strategy (`decoding.strategies`) with some frames given, then its audio by the codec. This
module is the host side: it plans the windows, checks a call against the strategy's capabilities, and feeds the
program. Which frames are given is data (`decoding.initial_context`), not a shape.

Shapes: batches are padded to a power of two and text to a multiple of `text_pad_to` (both exact, see
`cross_attention_mask`). Durations within the model's window are not bucketed: padding frames would change the
random draws (one per frame) and the codec's edges, so each distinct length compiles once (and is then read from
the persistent compilation cache, `generation.compile_cache`). Past the window, every window of every duration has
the model's length: one program serves them all. Durations are exact to the sample (`samples`): the frames are
planned to cover them (`frames`) and their audio is cut there.

Long form: windows of the model's length W; each keeps the frames it shares with what is already decoded as given
tokens and decodes the rest (`generation.windows`, `overlap` frames of context). Consecutive windows share those
tokens, so nothing needs a crossfade: a stream takes each window's audio from the middle of its left overlap to the
middle of its right one, where the codec decodes of both windows see half an overlap of identical tokens around
the cut.

Control: a description may be a prompt schedule (text over time: a new window at each change, `prompt_schedule`); the
unconditional half of classifier-free guidance is data (the null condition, or a `negative` prompt's states), so
negative prompts run the same program; `on_step` selects the program's progress variant, whose ordered host
callback after every decoding step reports progress and can cancel (`Cancelled`) between steps; `generate_loop`
takes an exact length in `samples` (tempo-locked loops, `tempo_loop_samples`).

Seeds: example b samples with its own key, `jax.random.key(seed + b)` (or `seeds[b]`) folded with the pass and
window index, so its random draws do not depend on the rest of the batch. Its conditioning does, slightly, as in
audiocraft: text is padded to the batch's longest prompt, and padded positions take attention weight.

Shapes: B batch, K codebooks, T frames, W window frames, C channels, N samples.
"""
import collections
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.audio import convert
from magnet_jax.audio import files as audio_io
from magnet_jax.codec import CodecConfig
from magnet_jax.decoding import DecodingConfig, check_config, check_finite, initial_context, output_length, presets
from magnet_jax.decoding.config import check_overrides
from magnet_jax.decoding.strategies import Decoder, MaskedDecoding, RescoredDecoding, default_for, unsupported
from magnet_jax.generation import prompt_schedule, window_program, windows
from magnet_jax.generation.prompt_schedule import Description
from magnet_jax.generation.prompts import check_seeds
from magnet_jax.io.errors import Cancelled
from magnet_jax.models.config import MagnetConfig
from magnet_jax.text import TextEncoder

Seeds = int | Sequence[int]  # an int gives example b the seed `seed + b`
Progress = Callable[[int, int], None]  # (windows done, windows in all)
# (decoding steps done, steps in all) -> True to cancel: told after every step of every window (`on_step=`).
StepProgress = Callable[[int, int], bool | None]
Negative = str | Sequence[str | None] | None  # negative prompt(s): one for all examples, or one each
LOOP_PASS = 1  # key salt of the second pass of `loop_tokens`
TEXT_CACHE = 8  # text-state batches kept (a schedule alternates between a few)
PROGRAM_CACHE = 32  # compiled window programs kept, least recently used first out (each distinct decoding config,
# batch bucket and shape is one; a server taking decoding values from requests must not keep them all). An eviction
# clears JAX's in-memory caches, so other jitted functions (codec, keys) compile again on their next call.


def batch_bucket(size: int) -> int:
  """Smallest power of two >= size: the batch a program is compiled for."""
  return 1 << max(size - 1, 0).bit_length()


@dataclasses.dataclass
class MagnetPipeline:
  """A MAGNeT LM with its codec and text encoder.

  Attributes:
    lm_config, lm_params: the MAGNeT LM.
    codec_config, codec_params: the audio tokenizer (its n_q / bins / frame rate match the LM's).
    text_encoder: prompts -> text states (T5 for the released models).
    decoding: default decoding parameters (overridable per call).
    duration: default duration in seconds (the LM's segment).
    text_pad_to: text lengths are padded to a multiple of this (bucketing; exact, see `cross_attention_mask`).
    rescorer_config, rescorer_params: an optional causal (MusicGen-style) LM for `rescorer_weight > 0`.
    decoder: the decoding strategy (`decoding.strategies`; default: the one the LM was trained for, `default_for`:
      Hybrid-MAGNeT for the delay codebook pattern, which generates from text within the model's window, masked
      decoding otherwise). A call with rescorer_weight > 0 decodes with the rescored strategy instead of the masked
      one. What a call asks for (given frames, long form, negative prompts, step progress) is checked against the
      strategy's capabilities before anything compiles.
    on_compile: told (with a one-line description) before a new program compiles, e.g. to print it.
    on_window: told after each decoded window (codes given [B, K, W], known [B, W], codes decoded [B, K, W], the
      conditions as the program received them: (cond, cond_mask, uncond, uncond_mask)), on the host, e.g. to
      inspect what a mode decodes.
    compile_seconds: time spent compiling window programs so far (the rest of a call's time is generation).
  """
  lm_config: MagnetConfig
  lm_params: Any
  codec_config: CodecConfig
  codec_params: Any
  text_encoder: TextEncoder
  decoding: DecodingConfig = DecodingConfig()
  duration: float | None = None
  text_pad_to: int = 8
  rescorer_config: MagnetConfig | None = None
  rescorer_params: Any = None
  decoder: Decoder | None = None
  on_compile: Callable[[str], None] | None = None
  on_window: Callable[[np.ndarray, np.ndarray, np.ndarray, tuple], None] | None = None
  compile_seconds: float = dataclasses.field(default=0.0, init=False)
  _programs: collections.OrderedDict = dataclasses.field(default_factory=collections.OrderedDict, init=False,
                                                         repr=False)
  _text_states: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

  def __post_init__(self):
    check_codec_matches(self.lm_config, self.codec_config)
    if self.text_encoder.dim != self.lm_config.text_dim:
      raise ValueError(f'the text encoder gives {self.text_encoder.dim}-d states but the LM expects '
                       f'text_dim={self.lm_config.text_dim}')
    self.lm_params = jax.device_put(self.lm_params)
    self.codec_params = jax.device_put(self.codec_params)
    if self.rescorer_params is not None:
      self.rescorer_params = jax.device_put(self.rescorer_params)
    if self.duration is None:
      self.duration = self.lm_config.segment_duration
    if self.decoder is None:
      self.decoder = default_for(self.lm_config)

  @property
  def sample_rate(self) -> int:
    return self.codec_config.sample_rate

  @property
  def frame_rate(self) -> float:
    return self.codec_config.frame_rate

  def decoding_with(self, decoding: DecodingConfig | None = None, preset: str | None = None,
                    **sampling) -> DecodingConfig:
    """The one checked decoding config of a call: `decoding` (default: the checkpoint's, `self.decoding`), then a
    `presets.PRESETS` name's steps and span arrangement, then `sampling` overrides (DecodingConfig fields), e.g.
    `pipeline.decoding_with(temp=2.0)` is the checkpoint's tuned decoding at temperature 2.

    Every public method takes `decoding=`, `preset=` and/or DecodingConfig fields as keywords and calls this once;
    the methods it calls in turn receive the result. Unknown names, a decoding_steps entry count other than n_q,
    top_k > card, or rescoring without a rescorer are errors.
    """
    sampling = {**presets.overrides(preset, self.lm_config.n_q, self.rescorer_params is not None), **sampling}
    decoding = dataclasses.replace(self.decoding if decoding is None else decoding, **check_overrides(sampling))
    check_config(self.lm_config, decoding)
    self.decoder_for(decoding).check(self.lm_config, decoding, self.window_frames(decoding))
    return decoding

  def decoder_for(self, decoding: DecodingConfig) -> Decoder:
    """The strategy of a call: the pipeline's, or the rescored one in place of masked decoding for
    rescorer_weight > 0 (which needs a rescorer)."""
    if decoding.rescorer_weight > 0 and isinstance(self.decoder, MaskedDecoding):
      if self.rescorer_params is None:
        raise ValueError('rescorer_weight > 0 needs a rescorer (pretrained.load_rescorer, --rescorer DIR)')
      return RescoredDecoding(self.rescorer_config)
    return self.decoder

  def window_frames(self, decoding: DecodingConfig) -> int:
    """W: the frames of one decoding window: the model's segment, rounded up to whole spans for 'nonoverlap' (at
    most span_len - 1 frames past the segment it was trained on, where audiocraft trims to fewer, so that a duration
    of the whole segment fits one window). Positions are sinusoidal and the restricted attention is built for the
    window's own length, so the few frames more run as the rest (audiocraft builds its masks for the segment alone,
    so its tokens are a reference within the segment only)."""
    return self._whole_spans(self.lm_config.sequence_length, decoding)

  def _trim(self, length: int, decoding: DecodingConfig) -> int:
    return output_length(length, self.lm_config.span_len, decoding.span_arrangement)

  def _whole_spans(self, length: int, decoding: DecodingConfig) -> int:
    """The fewest frames >= `length` that the decoder generates as they are (whole spans for 'nonoverlap')."""
    return next(n for n in range(length, length + self.lm_config.span_len) if self._trim(n, decoding) == n)

  def samples(self, duration: float) -> int:
    """The samples of `duration` seconds at `sample_rate`, rounded to the nearest: every output that a duration
    sets has exactly this length."""
    if not 0 < duration < math.inf:
      raise ValueError(f'duration must be a finite number of seconds > 0, got {duration}')
    return round(duration * self.sample_rate)

  def frames(self, duration: float, decoding: DecodingConfig) -> int:
    """Frames generated for `duration` seconds (`_frames` of its `samples`)."""
    return self._frames(self.samples(duration), decoding)

  def _frames(self, samples: int, decoding: DecodingConfig) -> int:
    """Frames that cover `samples` (their audio is then cut to it): whole spans within the model's window, exactly
    ceil(samples / hop) past it (long form, whose windows decode any length)."""
    hop, span = self.codec_config.hop_length, self.lm_config.span_len
    if self._trim(samples // hop, decoding) < 1:
      raise ValueError(f'duration {samples / self.sample_rate:g} s is shorter than one {span}-frame span '
                       f'({span / self.frame_rate:g} s)')
    length = math.ceil(samples / hop)
    rounded = self._whole_spans(length, decoding)
    return rounded if rounded <= self.window_frames(decoding) else length

  def condition(self, descriptions: Sequence[str | None]) -> tuple[jax.Array, jax.Array, int]:
    """Text states for a batch padded to its bucket: (cond [B', S, Dt], cond_mask [B', S], B)."""
    if isinstance(descriptions, str) or not len(descriptions):
      raise ValueError('descriptions must be a non-empty list of prompts')
    texts = tuple(descriptions) + (None,) * (batch_bucket(len(descriptions)) - len(descriptions))
    if texts not in self._text_states:  # a call (a loop, a schedule) conditions several windows on the same texts
      if len(self._text_states) >= TEXT_CACHE:
        del self._text_states[next(iter(self._text_states))]
      self._text_states[texts] = self.text_encoder.encode(list(texts), pad_to=self.text_pad_to)
    cond, cond_mask = self._text_states[texts]
    return cond, cond_mask, len(descriptions)

  def cfg_conditions(self, descriptions: Sequence[str | None], negative: Negative = None):
    """The CFG batch's two halves as data: (cond, cond_mask, uncond, uncond_mask) [B', S, Dt] / [B', S].

    uncond is the null condition (zeros, all-False mask) or, with `negative`, the negative prompts' states; both
    halves are padded to one text length with masked positions (exact: `cross_attention_mask`).
    """
    cond, cond_mask, count = self.condition(descriptions)
    if negative is None:
      return cond, cond_mask, jnp.zeros_like(cond), jnp.zeros_like(cond_mask)
    negative = [negative] * count if isinstance(negative, str) else list(negative)
    if len(negative) != count:
      raise ValueError(f'{len(negative)} negative prompts for {count} descriptions')
    if not self.decoder.capabilities.negative_prompts:
      raise unsupported(self.decoder, 'a negative prompt')
    uncond, uncond_mask, _ = self.condition(negative)
    pad = lambda x, length: jnp.pad(x, [(0, 0), (0, length - x.shape[1])] + [(0, 0)] * (x.ndim - 2))
    length = max(cond.shape[1], uncond.shape[1])
    return pad(cond, length), pad(cond_mask, length), pad(uncond, length), pad(uncond_mask, length)

  def _run_window(self, conditions, keys, codes, known, decoding: DecodingConfig,
                  listener: Callable[[int], bool] | None = None):
    """The window program, compiled (and timed) on first use for these shapes: (codes, audio) on the host.

    conditions: `cfg_conditions`. listener: told the steps done after each step, returns True to stop (the
    progress variant of the program; None: the default program, free of host callbacks).
    """
    decoder, report = self.decoder_for(decoding), listener is not None
    extra = self.rescorer_params if isinstance(decoder, RescoredDecoding) else None
    key = (decoder, decoding, conditions[0].shape, codes.shape, report)
    with window_program.listening(listener) as listener_id:
      args = (self.lm_params, self.codec_params, extra, *conditions, keys, codes, known, listener_id)
      if key not in self._programs:
        if self.on_compile is not None:
          self.on_compile(f'batch {codes.shape[0]}, {codes.shape[-1]} frames, text {conditions[0].shape[1]} tokens'
                          f'{", step progress" if report else ""}')
        start = time.perf_counter()
        self._programs[key] = window_program.window_program.lower(
            *args, lm_config=self.lm_config, decoding=decoding, codec_config=self.codec_config, decoder=decoder,
            report_steps=report).compile()
        self.compile_seconds += time.perf_counter() - start
        if len(self._programs) > PROGRAM_CACHE:
          self._programs.popitem(last=False)
          # JAX's own tracing, lowering and compilation caches hold every program ever compiled (LRUs of thousands);
          # the programs kept here stay usable (they hold their executables), the rest are freed.
          jax.clear_caches()
      self._programs.move_to_end(key)
      decoded, bad_step, audio = self._programs[key](*args)
      bad_step = int(bad_step)  # waits for the program (and its callbacks)
    check_finite(bad_step, decoding)
    decoded = np.asarray(decoded)
    if self.on_window is not None:  # copies: the window's codes and known frames are views of state updated next
      self.on_window(np.array(codes), np.array(known), decoded, tuple(np.array(c) for c in conditions))
    return decoded, np.asarray(audio)

  def _geometry(self, frames: int, decoding: DecodingConfig, overlap: float | None) -> tuple[int, int]:
    """(W, overlap frames) of a piece of `frames` frames; `overlap` seconds (None: half a window)."""
    width = min(self.window_frames(decoding), self._trim(frames, decoding))
    overlap_frames = width // 2 if overlap is None else round(overlap * self.frame_rate)
    if not 0 <= overlap_frames < width:
      raise ValueError(f'the overlap ({overlap} s) must be >= 0 and shorter than the window '
                       f'({width / self.frame_rate:g} s)')
    return width, overlap_frames

  def _plan(self, known: np.ndarray, decoding: DecodingConfig, overlap: float | None,
            reverse: bool = False) -> tuple[int, list[int]]:
    """(W, window starts) for the unknown frames of `known` [T]; `overlap` seconds (None: half a window)."""
    width, overlap_frames = self._geometry(known.shape[-1], decoding, overlap)
    return width, windows.plan(known, width, overlap_frames, reverse)

  def _text_plan(self, descriptions: Sequence[Description], known: np.ndarray, decoding: DecodingConfig,
                 overlap: float | None) -> tuple[int, list[int], list[int]]:
    """(W, starts, fresh) of left-to-right generation after the given prefix of `known` [T], with a new window at
    every change of the descriptions' schedules (`windows.scheduled_plan`)."""
    total = known.shape[-1]
    width, overlap_frames = self._geometry(total, decoding, overlap)
    changes = prompt_schedule.change_frames([prompt_schedule.entries(d) for d in descriptions], self.frame_rate, total)
    return width, *windows.scheduled_plan(total, width, overlap_frames, int(known.sum()), changes)

  def _windows(self, descriptions: Sequence[Description], codes: np.ndarray, known: np.ndarray, seed: Seeds,
               decoding: DecodingConfig, width: int, starts: list[int], pass_index: int = 0,
               progress: Progress | None = None, fresh: list[int] | None = None, negative: Negative = None,
               on_step: StepProgress | None = None, first_window: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Decodes the unknown frames of `codes` window by window (`_plan`), updating it in place.

    Args:
      descriptions: B prompts or prompt schedules; each window is conditioned on the text in force at the first
        frame it decodes.
      codes: [B, K, T] int32 host array; read where `known`, written elsewhere.
      known: [T] bool, the given frames (shared by the batch).
      seed, decoding: see the class docstring; decoding settings.
      width, starts: the plan.
      pass_index: salt of the keys (passes over the same frames draw differently).
      progress: told after each window.
      fresh: per window, the first frame it decodes even if decoded before (`windows.scheduled_plan`).
      negative: negative prompt(s) to guide against instead of the null condition (`cfg_conditions`).
      on_step: told (steps done, steps in all) after every decoding step (the progress variant of the program);
        returning True stops the generation between steps and raises `Cancelled`.
      first_window: the index (key salt) of the first window: a piece decoded in several calls (`continue_window`)
        draws what one call would.

    Yields:
      (window start frame, the window's audio [B, C, W * hop]) after each window.
    """
    if isinstance(descriptions, str) or not len(descriptions):
      raise ValueError('descriptions must be a non-empty list of prompts')
    timelines = [prompt_schedule.entries(d) for d in descriptions]
    count = len(timelines)
    if codes.shape[:2] != (count, self.lm_config.n_q):
      raise ValueError(f'codes must be [B={count}, K={self.lm_config.n_q}, T], got {codes.shape}')
    seeds = check_seeds(seed, count)
    bucket = batch_bucket(count)
    seeds = jnp.asarray(np.concatenate([seeds, np.zeros(bucket - count, seeds.dtype)]), jnp.int32)
    self._check_capabilities(known, len(starts), on_step, decoding, width)
    padded = np.concatenate([codes, np.repeat(codes[:1], bucket - count, axis=0)])
    known = np.array(known, bool)
    total_steps = decoding.num_steps * len(starts)
    for index, start in enumerate(starts):
      window = slice(start, start + width)
      if fresh is not None:
        known[fresh[index]:start + width] = False
      first = start + int(np.argmin(known[window]))
      texts = [prompt_schedule.text_at(t, first / self.frame_rate) for t in timelines]
      conditions = self.cfg_conditions(texts, negative)
      stopped, listener = [], None
      if on_step is not None:
        def listener(done: int, base: int = index * decoding.num_steps, stopped: list = stopped) -> bool:
          stop = bool(on_step(base + done, total_steps))
          stopped.extend([base + done] if stop else [])
          return stop
      given = np.broadcast_to(known[window], (bucket, width))
      keys = window_program.keys(seeds, pass_index, first_window + index)
      padded[..., window], audio = self._run_window(conditions, keys, padded[..., window], given, decoding, listener)
      if stopped:
        raise Cancelled(f'cancelled after decoding step {stopped[0]} of {total_steps}')
      codes[..., window] = padded[:count, :, window]
      known[window] = True
      if progress is not None:
        progress(index + 1, len(starts))
      yield start, audio[:count]

  def continue_window(self, descriptions: Sequence[str | None], context: np.ndarray, seed: Seeds = 0, index: int = 0,
                      *, width: int | None = None, negative: Negative = None, decoding: DecodingConfig | None = None,
                      **sampling) -> tuple[np.ndarray, np.ndarray]:
    """One window of long form, after the `context` [B, K, O] codes that end what precedes it (O < W; O = 0: the
    first window): W frames (default: the model's window) with the context as its first O frames, decoded as window
    `index` of a long-form piece of `seed` is (`stream` decodes the same tokens for the same context and index).
    Live generation (`generation.live`) calls it window after window, with the conditions of the moment.

    Returns:
      (codes [B, K, W] int32, the context first; audio [B, C, W * hop]).
    """
    decoding = self.decoding_with(decoding, **sampling)
    window, (batch, levels, given) = self.window_frames(decoding), np.shape(context)
    width = window if width is None else width
    if not 0 < width <= window or self._trim(width, decoding) != width:
      raise ValueError(f'a window of {width} frames: expected at most {window}, in whole '
                       f'{self.lm_config.span_len}-frame spans')
    if (batch, levels) != (len(descriptions), self.lm_config.n_q) or not 0 <= given < width:
      raise ValueError(f'context must be [B={len(descriptions)}, K={self.lm_config.n_q}, O < {width}] codes, '
                       f'got {np.shape(context)}')
    known = np.arange(width) < given
    codes = np.zeros((batch, levels, width), np.int32)
    codes[..., :given] = context
    codes = np.array(initial_context(batch, self.lm_config, width, known_codes=codes,
                                     known=np.broadcast_to(known, (batch, width)))[0])
    [(_, audio)] = self._windows(descriptions, codes, known, seed, decoding, width, [0], negative=negative,
                                 first_window=index)
    return codes, audio
  def _check_capabilities(self, known: np.ndarray, windows_count: int, on_step: StepProgress | None,
                          decoding: DecodingConfig, width: int) -> None:
    """What a call asks for against its strategy's capabilities (one line naming what is missing)."""
    decoder = self.decoder_for(decoding)
    capabilities = decoder.capabilities
    if np.any(known) and not capabilities.known_frames:
      raise unsupported(decoder, 'given frames (an audio prompt, infilling, outpainting or a loop)')
    if windows_count > 1 and not capabilities.long_form:
      raise unsupported(decoder, f'more than one window ({self.window_frames(decoding) / self.frame_rate:g} s)')
    if on_step is not None and not capabilities.progress:
      raise unsupported(decoder, 'step progress')
    decoder.check(self.lm_config, decoding, width)

  def fill_tokens(self, descriptions: Sequence[Description], codes: np.ndarray, known: np.ndarray, seed: Seeds = 0,
                  *, reverse: bool = False, overlap: float | None = None, pass_index: int = 0,
                  progress: Progress | None = None, negative: Negative = None, on_step: StepProgress | None = None,
                  decoding: DecodingConfig | None = None, **sampling) -> np.ndarray:
    """Generates the frames of `codes` [B, K, T] that are not `known` [T], keeping the known ones bit for bit (all
    levels): the general form of continuation, infilling and outpainting. Any T: windows of the model's length
    sweep longer pieces (right to left with `reverse`); see `_windows` for the other arguments.

    Returns:
      codes [B, K, T] int32.
    """
    return self._fill(descriptions, codes, known, seed, self.decoding_with(decoding, **sampling), reverse=reverse,
                      overlap=overlap, pass_index=pass_index, progress=progress, negative=negative, on_step=on_step)

  def _fill(self, descriptions, codes, known, seed: Seeds, decoding: DecodingConfig, *, reverse: bool = False,
            overlap: float | None = None, pass_index: int = 0, progress: Progress | None = None,
            negative: Negative = None, on_step: StepProgress | None = None) -> np.ndarray:
    codes, known = np.array(codes, np.int32), np.asarray(known, bool)
    for _ in self._windows(descriptions, codes, known, seed, decoding, *self._plan(known, decoding, overlap, reverse),
                           pass_index, progress, negative=negative, on_step=on_step):
      pass
    return codes

  def _canvas(self, descriptions: Sequence[str | None], total: int, given: np.ndarray | None,
              decoding: DecodingConfig, at_end: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(codes [B, K, T], known [T]) of T = `total` frames with the `given` [B, K, P] codes at the start (or end),
    mask ids elsewhere (`decoding.initial_context`)."""
    batch, known = len(descriptions), np.zeros(total, bool)
    codes = np.zeros((batch, self.lm_config.n_q, total), np.int32)
    if given is not None:
      given = np.asarray(given, np.int32)
      if given.ndim != 3 or given.shape[:2] != codes.shape[:2]:
        raise ValueError(f'prompt must be [B={batch}, K={self.lm_config.n_q}, P] codes, got {given.shape}')
      if given.shape[-1] >= total:
        raise ValueError(f'the prompt ({given.shape[-1] / self.frame_rate:.2f} s) must be shorter than the output '
                         f'({total / self.frame_rate:.2f} s)')
      place = slice(total - given.shape[-1], total) if at_end else slice(0, given.shape[-1])
      codes[..., place], known[place] = given, True
    codes, _ = initial_context(batch, self.lm_config, total, known_codes=codes,
                               known=np.broadcast_to(known, (batch, total)))
    return np.array(codes), known

  def stream(self, descriptions: Sequence[Description], duration: float | None = None, seed: Seeds = 0,
             prompt: np.ndarray | None = None, overlap: float | None = None, progress: Progress | None = None,
             *, negative: Negative = None, on_step: StepProgress | None = None,
             decoding: DecodingConfig | None = None, **sampling) -> Iterator[np.ndarray]:
    """Generates left to right, yielding audio as it becomes final (long form: one chunk per window).

    Args:
      descriptions: B prompts (None: unconditional), or prompt schedules [(seconds, text), ...] (`prompt_schedule`): a
        new window starts at each change and is conditioned on the new text, continuing what precedes it.
      duration: seconds in all, prompt included (default: `self.duration`); any length.
      seed: see the class docstring.
      prompt: optional [B, K, P] codes to continue (P frames shorter than the output).
      overlap: seconds of the previous window each long-form window keeps as context (default: half a window).
      progress: told after each window.
      negative: negative prompt(s), one for all or one per description: guidance steers away from them instead of
        from no text (None: the null condition, audiocraft's CFG).
      on_step: told (steps done, steps in all) after every decoding step, by the progress variant of the program;
        return True to stop between steps (`Cancelled` is raised; nothing more is yielded).
      decoding, **sampling: the decoding config (default: the pipeline's) and DecodingConfig overrides.

    Yields:
      audio [B, C, n] chunks at `sample_rate`, `samples(duration)` samples in all (the frames' audio, cut there).
    """
    decoding = self.decoding_with(decoding, **sampling)
    samples = self.samples(self.duration if duration is None else duration)
    codes, known = self._canvas(descriptions, self._frames(samples, decoding), prompt, decoding)
    width, starts, fresh = self._text_plan(descriptions, known, decoding, overlap)
    prefix, hop = int(known.sum()), self.codec_config.hop_length
    first, cuts = windows.stream_cuts(starts, width, codes.shape[-1], prefix, fresh)
    if first:
      yield self.decode(codes[..., :prefix])[..., :min(first * hop, samples)]
    decoded = self._windows(descriptions, codes, known, seed, decoding, width, starts, progress=progress, fresh=fresh,
                            negative=negative, on_step=on_step)
    for (a, b), (start, audio) in zip(cuts, decoded, strict=True):
      yield audio[..., (a - start) * hop:min(b * hop, samples) - start * hop]  # cut at the duration

  def generate_tokens(self, descriptions: Sequence[Description], duration: float | None = None, seed: Seeds = 0,
                      prompt: np.ndarray | None = None, *, negative: Negative = None,
                      on_step: StepProgress | None = None, decoding: DecodingConfig | None = None,
                      **sampling) -> np.ndarray:
    """codes [B, K, T] int32 for B descriptions (T = `frames(duration)`: enough for the duration, whole spans within
    the model's window), continuing the optional [B, K, P] `prompt` codes (see `stream` for the other arguments)."""
    decoding = self.decoding_with(decoding, **sampling)
    total = self.frames(self.duration if duration is None else duration, decoding)
    return self._tokens(descriptions, total, seed, prompt, negative, on_step, decoding)

  def _tokens(self, descriptions: Sequence[Description], total: int, seed: Seeds, prompt: np.ndarray | None,
              negative: Negative, on_step: StepProgress | None, decoding: DecodingConfig) -> np.ndarray:
    """`generate_tokens` of T = `total` frames."""
    codes, known = self._canvas(descriptions, total, prompt, decoding)
    width, starts, fresh = self._text_plan(descriptions, known, decoding, None)
    for _ in self._windows(descriptions, codes, known, seed, decoding, width, starts, fresh=fresh, negative=negative,
                           on_step=on_step):
      pass
    return codes

  def generate(self, descriptions: Sequence[Description], duration: float | None = None, seed: Seeds = 0,
               prompt: np.ndarray | None = None, *, negative: Negative = None, on_step: StepProgress | None = None,
               decoding: DecodingConfig | None = None, **sampling) -> np.ndarray:
    """audio [B, C, N] float32 at `sample_rate` for B descriptions (any duration; see `stream`)."""
    return np.concatenate(list(self.stream(descriptions, duration, seed, prompt, negative=negative, on_step=on_step,
                                           decoding=decoding, **sampling)), axis=-1)

  def prepare_audio(self, audio: np.ndarray, sample_rate: int, count: int) -> np.ndarray:
    """Any audio ([N], [C, N], or [B, C, N]) -> [count, C, N] at the codec's rate and channels."""
    audio = audio_io.to_batch(audio, sample_rate, self.sample_rate, self.codec_config.channels)
    if audio.shape[0] not in (1, count):
      raise ValueError(f'{audio.shape[0]} audio prompts for {count} descriptions')
    return np.broadcast_to(audio, (count,) + audio.shape[1:])

  def generate_continuation(self, prompt_audio: np.ndarray, prompt_sample_rate: int,
                            descriptions: Sequence[Description] | None = None, duration: float | None = None,
                            seed: Seeds = 0, *, negative: Negative = None, on_step: StepProgress | None = None,
                            decoding: DecodingConfig | None = None, **sampling) -> np.ndarray:
    """audiocraft's `generate_continuation`: audio [B, C, N] that starts with (the codec's rendering of) the prompt
    and continues it, `duration` seconds in all (any length; see `stream`)."""
    descriptions = [None] if descriptions is None else descriptions
    prompt = self.encode(self.prepare_audio(prompt_audio, prompt_sample_rate, len(descriptions)))
    return self.generate(descriptions, duration, seed, prompt, negative=negative, on_step=on_step, decoding=decoding,
                         **sampling)

  def infill(self, audio: np.ndarray, sample_rate: int, descriptions: Sequence[Description], start: float,
             end: float, seed: Seeds = 0, *, negative: Negative = None, on_step: StepProgress | None = None,
             original: bool = True, decoding: DecodingConfig | None = None, **sampling) -> np.ndarray:
    """Regenerates seconds [start, end) of `audio` given what lies left and right of them.

    With `original` (the default) the output outside the regenerated frames is the input itself (at the codec's
    rate and channels), joined to them by `keep_original`'s equal-power crossfades; without, it is the codec's
    rendering described next (audiocraft's behaviour).

    The frames outside the span keep their codes (every level) and serve as context; the span is decoded by the
    same masked decoding, in windows centred on it. Only the audio the edit can reach is encoded and decoded: the
    span, a model window on either side (all its windows can see) and one second of codec context beyond. Where
    that region is the whole audio (short audio), the output is the codec's rendering of all of it; otherwise the
    audio outside the region is the input itself (at the codec's rate and channels), joined to the decoded region
    by crossfades over its context seconds, which hold the input's own codes (so work and memory do not grow with
    the audio's length).

    Returns:
      audio [B, C, N] (N: the prompt's samples at `sample_rate`).
    """
    decoding = self.decoding_with(decoding, **sampling)
    audio = self.prepare_audio(audio, sample_rate, len(descriptions))
    seconds = audio.shape[-1] / self.sample_rate
    if not 0 <= start < end <= seconds:
      raise ValueError(f'the infill span {start:g}-{end:g} s is not inside the audio (0-{seconds:.2f} s)')
    hop, total = self.codec_config.hop_length, math.ceil(audio.shape[-1] / self.codec_config.hop_length)
    first, last = int(start * self.frame_rate), math.ceil(end * self.frame_rate)
    context = math.ceil(self.frame_rate)
    reach = self.window_frames(decoding) + context
    lo, hi = max(first - reach, 0), min(last + reach, total)
    piece = audio[..., lo * hop:hi * hop]
    codes = self.encode(piece)
    known = np.ones(codes.shape[-1], bool)
    known[first - lo:last - lo] = False
    decoded = self.decode(self._fill(descriptions, codes, known, seed, decoding, negative=negative,
                                    on_step=on_step))[..., :piece.shape[-1]]
    if (lo, hi) != (0, total):
      decoded = _splice(audio, decoded, lo * hop, context * hop if lo else 0, context * hop if hi < total else 0)
    return keep_original(audio, decoded, first * hop, last * hop, round(INFILL_FADE_S * self.sample_rate)) \
        if original else decoded

  def outpaint(self, audio: np.ndarray, sample_rate: int, descriptions: Sequence[Description], side: str,
               duration: float, seed: Seeds = 0, *, negative: Negative = None, on_step: StepProgress | None = None,
               decoding: DecodingConfig | None = None, **sampling) -> np.ndarray:
    """Extends `audio` to `duration` seconds in all, on its 'right' (a continuation) or its 'left' (what could
    have come before it): audio [B, C, samples(duration)]."""
    if side not in ('left', 'right'):
      raise ValueError(f"outpaint side must be 'left' or 'right', got {side!r}")
    decoding = self.decoding_with(decoding, **sampling)
    if side == 'right':
      return self.generate_continuation(audio, sample_rate, descriptions, duration, seed, negative=negative,
                                        on_step=on_step, decoding=decoding)
    audio = self.prepare_audio(audio, sample_rate, len(descriptions))
    given, samples = self.encode(audio), self.samples(duration)
    padding = given.shape[-1] * self.codec_config.hop_length - audio.shape[-1]  # the audio's last frame's padding
    codes, known = self._canvas(descriptions, self._frames(samples + padding, decoding), given, decoding, at_end=True)
    decoded = self.decode(self._fill(descriptions, codes, known, seed, decoding, reverse=True, negative=negative,
                                     on_step=on_step))
    return decoded[..., decoded.shape[-1] - padding - samples:decoded.shape[-1] - padding]  # ends where audio does

  def loop_tokens(self, descriptions: Sequence[Description], codes: np.ndarray, seed: Seeds = 0, *,
                  negative: Negative = None, on_step: StepProgress | None = None,
                  decoding: DecodingConfig | None = None, **sampling) -> np.ndarray:
    """Makes codes [B, K, L] loop: regenerates their last quarter (of at most a window) so that it leads into
    their start.

    Method: the codes are rotated left by c frames (c: half of the rest of the window), which puts their start
    right after their end; the end zone is then infilled with the rotated codes as context on both sides, and the
    result rotated back. The new end is decoded with the loop's own start as its right context (all levels, and
    the restricted attention of levels > 0 sees across the seam), so playing it in a loop continues seamlessly.

    Returns:
      codes [B, K, L] int32: the first L - E frames unchanged, the last E regenerated.
    """
    decoding = self.decoding_with(decoding, **sampling)
    span, length = self.lm_config.span_len, codes.shape[-1]
    reach = min(length, self.window_frames(decoding))
    zone = max(span, reach // 4 // span * span)
    if reach < zone + 2 * span:
      raise ValueError(f'a loop needs at least {(3 * span) / self.frame_rate:.2f} s')
    shift = (reach - zone) // 2
    known = np.ones(length, bool)
    known[length - shift - zone:length - shift] = False
    rotated = self._fill(descriptions, np.roll(codes, -shift, axis=-1), known, seed, decoding, pass_index=LOOP_PASS,
                         negative=negative, on_step=on_step)
    return np.roll(rotated, shift, axis=-1)

  def loop_frames(self, samples: int, decoding: DecodingConfig) -> int:
    """The frame count nearest to `samples` / hop that the decoder generates as it is (within the model's window,
    'nonoverlap' needs whole spans): the frame grid of an exact-length loop, rounded as little as possible."""
    exact = samples / self.codec_config.hop_length
    window, step = self.window_frames(decoding), self.lm_config.span_len
    candidates = range(max(1, math.floor(exact) - step), math.ceil(exact) + step + 1)
    return min((c for c in candidates if c > window or self._trim(c, decoding) == c), key=lambda c: abs(c - exact))

  def generate_loop(self, descriptions: Sequence[Description], duration: float | None = None, seed: Seeds = 0,
                    audio: np.ndarray | None = None, sample_rate: int | None = None, *, samples: int | None = None,
                    negative: Negative = None, on_step: StepProgress | None = None,
                    decoding: DecodingConfig | None = None, **sampling) -> np.ndarray:
    """A seamless loop: audio [B, C, L * hop] whose end continues into its start (see `loop_tokens`).

    Args:
      descriptions: B prompts.
      duration: loop length in seconds for a generated loop (default `self.duration`).
      seed: see the class docstring.
      audio, sample_rate: loop this audio instead (the loop lasts as long: its samples at the codec's rate).
      samples: an exact loop length in samples instead of `duration` (e.g. `tempo_loop_samples` of a tempo and a
        bar count).
      negative, on_step: see `stream` (on_step is told the steps of each pass: the loop's, then its seam's).
      decoding, **sampling: the decoding config (default: the pipeline's) and DecodingConfig overrides.

    Returns:
      audio [B, C, N]: N = `samples`, `samples(duration)` or the audio's samples. The loop is generated on the
      nearest frame grid (`loop_frames`; the audio's frames), then resampled periodically to exactly N samples
      (`audio.convert.resample_loop`: the residual spread over the loop, nothing cut), so it is as seamless at the
      wrap.
    """
    decoding = self.decoding_with(decoding, **sampling)
    if samples is not None and (audio is not None or duration is not None):
      raise ValueError('give a loop length in samples or a duration or audio to loop, not both')
    if audio is None:
      samples = self.samples(self.duration if duration is None else duration) if samples is None else samples
      codes = self._tokens(descriptions, self.loop_frames(samples, decoding), seed, None, negative, on_step, decoding)
    else:
      audio = self.prepare_audio(audio, sample_rate, len(descriptions))
      codes, samples = self.encode(audio), audio.shape[-1]
    loop = self.decode_loop(self.loop_tokens(descriptions, codes, seed, negative=negative, on_step=on_step,
                                             decoding=decoding))
    return convert.resample_loop(loop, samples)

  def decode(self, codes: np.ndarray) -> np.ndarray:
    """codes [B, K, T] -> audio [B, C, T * hop], each example on its own (the same whatever its batch mates)."""
    return np.asarray(window_program.decode(self.codec_params, jnp.asarray(codes), self.codec_config))

  def decode_loop(self, codes: np.ndarray) -> np.ndarray:
    """codes [B, K, L] of a loop -> audio [B, C, L * hop] decoded with wrap-around context: one second (at most
    L frames) of the loop's end before it and of its start after it, so its edges are decoded as they sound when
    it plays in a loop."""
    length = codes.shape[-1]
    context = min(length, math.ceil(self.frame_rate))
    audio = self.decode(np.concatenate([codes[..., -context:], codes, codes[..., :context]], axis=-1))
    hop = self.codec_config.hop_length
    return audio[..., context * hop:(context + length) * hop]

  def encode(self, audio: np.ndarray) -> np.ndarray:
    """audio [B, C, N] at `sample_rate` -> codes [B, K, ceil(N / hop)], each example on its own (as `decode`)."""
    codes = window_program.encode(self.codec_params, jnp.asarray(audio, jnp.float32), self.codec_config)
    return np.asarray(codes[:, :self.lm_config.n_q])


def tempo_loop_samples(bpm: float, bars: int, sample_rate: int, beats_per_bar: int = 4) -> int:
  """Samples of `bars` bars of `beats_per_bar` beats at `bpm` beats per minute (nearest integer)."""
  if not bpm > 0 or bars < 1 or beats_per_bar < 1:
    raise ValueError(f'a tempo loop needs bpm > 0, bars >= 1 and beats per bar >= 1; got {bpm:g}, {bars}, '
                     f'{beats_per_bar}')
  return round(bars * beats_per_bar * 60 * sample_rate / bpm)


INFILL_FADE_S = 0.02  # the crossfade between the input and an infill at each edge of the span (a click-free join)


def keep_original(original: np.ndarray, rendered: np.ndarray, start: int, end: int, fade: int) -> np.ndarray:
  """`rendered` [B, C, N] inside samples [start, end), `original` [B, C, N] outside, crossfaded with equal power
  (cos / sin gains, so uncorrelated signals keep their level) over the `fade` samples just outside each edge,
  where `rendered` holds the codec's rendering of the original's own codes."""
  out = np.array(original, np.float32)
  end = min(end, out.shape[-1])
  out[..., start:end] = rendered[..., start:end]
  for edge in (slice(max(start - fade, 0), start), slice(end, min(end + fade, out.shape[-1]))):
    count = edge.stop - edge.start
    if count:
      angle = (np.arange(count, dtype=np.float32) + 0.5) / count * (np.pi / 2)
      towards = np.sin(angle) if edge.stop == start else np.cos(angle)  # the rendering's gain, 1 at the span
      out[..., edge] = np.sqrt(1 - towards ** 2) * original[..., edge] + towards * rendered[..., edge]
  return out


def _splice(audio: np.ndarray, piece: np.ndarray, at: int, fade_in: int, fade_out: int) -> np.ndarray:
  """audio [B, C, N] with `piece` [B, C, n] put at sample `at`, crossfaded linearly over its first `fade_in` and
  last `fade_out` samples (0: a hard edge, where the piece meets the audio's own start or end)."""
  out = np.array(audio, np.float32)
  weight = np.ones(piece.shape[-1], np.float32)
  weight[:fade_in] = np.linspace(0, 1, fade_in + 2, dtype=np.float32)[1:-1]
  if fade_out:
    weight[-fade_out:] = np.linspace(1, 0, fade_out + 2, dtype=np.float32)[1:-1]
  region = out[..., at:at + piece.shape[-1]]
  region[...] = (1 - weight) * region + weight * piece  # exactly the piece where the weight is 1
  return out


def check_codec_matches(lm: MagnetConfig, codec_config: CodecConfig) -> None:
  """The LM and the codec must agree on codebooks, codebook size and frame rate (one clear error otherwise)."""
  if codec_config.n_q < lm.n_q:
    raise ValueError(f'the codec has {codec_config.n_q} codebooks but the LM models n_q={lm.n_q}')
  if codec_config.bins != lm.card:
    raise ValueError(f'the codec has {codec_config.bins} codes per codebook but the LM has card={lm.card}')
  if not math.isclose(codec_config.frame_rate, lm.frame_rate):
    raise ValueError(f'the codec runs at {codec_config.frame_rate} frames/s but the LM at {lm.frame_rate}')
