"""The compiled side of the pipeline: one XLA program per window (a decoding strategy's tokens, then their audio
by the codec), the per-example keys, the codec programs, and the registry of step listeners that the progress
variant's host callback reports to. `MagnetPipeline` plans the windows on the host and calls these.

Each example's audio is decoded on its own (`decode_each`: a `lax.map` over the batch), so it is the same whatever
its batch mates: a batched convolution may round differently with the batch size.

Shapes: B batch, K codebooks, W window frames, S text tokens, Dt text dim, C channels, N samples.
"""
import contextlib
import functools
import itertools
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from magnet_jax import codec
from magnet_jax.codec import CodecConfig
from magnet_jax.decoding import DecodingConfig
from magnet_jax.decoding.strategies import Decoder
from magnet_jax.models.config import MagnetConfig

_STEP_LISTENERS: dict[int, Callable[[int], bool]] = {}  # listener id (data in the program) -> host callback
_LISTENER_IDS = itertools.count()


def _report_step(listener: np.ndarray, done: np.ndarray) -> np.ndarray:
  """The host side of the progress variant's ordered callback: tells the call's listener, returns its stop flag."""
  return np.bool_(_STEP_LISTENERS[int(listener)](int(done)))


@contextlib.contextmanager
def listening(listener: Callable[[int], bool] | None) -> Iterator[np.int32]:
  """The id (program data) under which `listener` hears the steps of the programs run inside (0 without one)."""
  if listener is None:
    yield np.int32(0)
    return
  listener_id = next(_LISTENER_IDS) % 2 ** 31
  _STEP_LISTENERS[listener_id] = listener
  try:
    yield np.int32(listener_id)
  finally:
    _STEP_LISTENERS.pop(listener_id, None)


@functools.partial(jax.jit, static_argnames=('lm_config', 'decoding', 'codec_config', 'decoder', 'report_steps'))
def window_program(lm_params, codec_params, extra_params, cond, cond_mask, uncond, uncond_mask, keys, codes, known,
                   listener, *, lm_config: MagnetConfig, decoding: DecodingConfig, codec_config: CodecConfig,
                   decoder: Decoder, report_steps: bool = False):
  """One window: (codes [B, K, W], first non-finite step (-1: none), audio [B, C, W * hop]).

  uncond, uncond_mask: the unconditional half of CFG as data ([B, S, Dt], [B, S]: zeros for the null condition, or a
  negative prompt's states), so both run this one program. extra_params: the strategy's own weights (the
  rescorer's), or None. `report_steps` compiles the progress variant: an ordered host callback after every step
  tells the listener `listener` (`listening`) and may stop the loop (`MaskedDecoder.run`).
  """
  on_step = None
  if report_steps:
    on_step = lambda done: io_callback(_report_step, jax.ShapeDtypeStruct((), jnp.bool_), listener, done,
                                       ordered=True)
  state = decoder.decode(lm_params, cond, cond_mask, keys, lm_config=lm_config, decoding=decoding, codes=codes,
                         known=known, uncond=(uncond, uncond_mask), extra_params=extra_params, on_step=on_step)
  return state.codes, state.bad_step, decode_each(codec_params, state.codes, codec_config)


def decode_each(codec_params, codes: jax.Array, codec_config: CodecConfig) -> jax.Array:
  """codes [B, K, T] -> audio [B, C, T * hop], one example at a time (see the module docstring)."""
  return jax.lax.map(lambda c: codec.decode(codec_params, c[None], codec_config)[0], codes)


decode = jax.jit(decode_each, static_argnames='codec_config')


@functools.partial(jax.jit, static_argnames='codec_config')
def encode(codec_params, audio: jax.Array, codec_config: CodecConfig) -> jax.Array:
  """audio [B, C, N] -> codes [B, K', ceil(N / hop)], one example at a time (as `decode_each`)."""
  return jax.lax.map(lambda a: codec.encode(codec_params, a[None], codec_config)[0], audio)


@jax.jit
def keys(seeds: jax.Array, pass_index: int, window: int) -> jax.Array:
  """[B] int32 seeds -> [B] keys: example b's key for one window of one pass."""
  return jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(jax.random.key(s), pass_index), window))(seeds)
