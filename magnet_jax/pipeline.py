"""Text -> audio with MAGNeT: text encoder -> masked decoding (one XLA program) -> codec decode.

`MagnetPipeline.generate(descriptions, duration, **sampling)` mirrors audiocraft's
`MAGNeT.get_pretrained(...).generate(...)`. Token generation and the codec decode are compiled together into one
program; batches are padded to a power of two and text to a multiple of `text_pad_to`, so a new prompt count or a
new prompt length rarely compiles again.
"""
import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax import codec
from magnet_jax.codec import CodecConfig
from magnet_jax.config import MagnetConfig
from magnet_jax.decoding import DecodingConfig, generate
from magnet_jax.text import TextEncoder


def batch_bucket(size: int) -> int:
  """Smallest power of two >= size: the batch a program is compiled for."""
  return 1 << max(size - 1, 0).bit_length()


@functools.partial(jax.jit, static_argnames=('lm_config', 'decoding', 'length', 'codec_config'))
def _generate_audio(lm_params, codec_params, cond, cond_mask, rng, *, lm_config: MagnetConfig,
                    decoding: DecodingConfig, length: int, codec_config: CodecConfig, prompt=None):
  """Tokens and audio in one program: codes [B, K, T] and audio [B, C, T * hop]."""
  codes = generate(lm_params, cond, cond_mask, rng, lm_config=lm_config, decoding=decoding, length=length,
                   prompt=prompt)
  return codes, codec.decode(codec_params, codes, codec_config)


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
  """
  lm_config: MagnetConfig
  lm_params: Any
  codec_config: CodecConfig
  codec_params: Any
  text_encoder: TextEncoder
  decoding: DecodingConfig = DecodingConfig()
  duration: float | None = None
  text_pad_to: int = 8

  def __post_init__(self):
    check_compatible(self.lm_config, self.codec_config)
    if self.text_encoder.dim != self.lm_config.text_dim:
      raise ValueError(f'the text encoder gives {self.text_encoder.dim}-d states but the LM expects '
                       f'text_dim={self.lm_config.text_dim}')
    self.lm_params = jax.device_put(self.lm_params)
    self.codec_params = jax.device_put(self.codec_params)
    if self.duration is None:
      self.duration = self.lm_config.segment_duration

  @property
  def sample_rate(self) -> int:
    return self.codec_config.sample_rate

  @property
  def frame_rate(self) -> float:
    return self.codec_config.frame_rate

  def decoding_with(self, **sampling) -> DecodingConfig:
    """The default decoding config with `sampling` overrides (unknown names are an error)."""
    fields = {f.name for f in dataclasses.fields(DecodingConfig)}
    unknown = sorted(set(sampling) - fields)
    if unknown:
      raise ValueError(f'unknown sampling parameter(s) {unknown}; valid: {sorted(fields)}')
    return dataclasses.replace(self.decoding, **sampling)

  def num_frames(self, duration: float) -> int:
    if not duration > 0:
      raise ValueError(f'duration must be > 0 seconds, got {duration}')
    return int(duration * self.frame_rate)

  def condition(self, descriptions: Sequence[str | None]) -> tuple[jax.Array, jax.Array, int]:
    """Text states for a batch padded to its bucket: (cond [B', S, Dt], cond_mask [B', S], B)."""
    if isinstance(descriptions, str) or not len(descriptions):
      raise ValueError('descriptions must be a non-empty list of prompts')
    texts = list(descriptions) + [None] * (batch_bucket(len(descriptions)) - len(descriptions))
    cond, cond_mask = self.text_encoder.encode(texts, pad_to=self.text_pad_to)
    return cond, cond_mask, len(descriptions)

  def generate_tokens(self, descriptions: Sequence[str | None], duration: float | None = None, seed: int = 0,
                      prompt: np.ndarray | None = None, **sampling) -> np.ndarray:
    """codes [B, K, T] int32 for B descriptions (T = duration * frame rate, trimmed to whole spans)."""
    codes, _ = self._run(descriptions, duration, seed, prompt, sampling)
    return codes

  def generate(self, descriptions: Sequence[str | None], duration: float | None = None, seed: int = 0,
               prompt: np.ndarray | None = None, **sampling) -> np.ndarray:
    """audio [B, C, N] float32 at `sample_rate` for B descriptions."""
    _, audio = self._run(descriptions, duration, seed, prompt, sampling)
    return audio

  def _run(self, descriptions, duration, seed, prompt, sampling):
    decoding = self.decoding_with(**sampling)
    length = self.num_frames(self.duration if duration is None else duration)
    cond, cond_mask, count = self.condition(descriptions)
    if prompt is not None:
      prompt = np.asarray(prompt, np.int32)
      if prompt.ndim != 3 or prompt.shape[0] != count or prompt.shape[1] != self.lm_config.n_q:
        raise ValueError(f'prompt must be [B={count}, K={self.lm_config.n_q}, P] codes, got {prompt.shape}')
      if prompt.shape[-1] >= length:
        raise ValueError(f'the prompt ({prompt.shape[-1]} frames) must be shorter than the output ({length})')
      prompt = np.concatenate([prompt, np.repeat(prompt[:1], cond.shape[0] - count, axis=0)])
    codes, audio = _generate_audio(
        self.lm_params, self.codec_params, cond, cond_mask, jax.random.key(seed), lm_config=self.lm_config,
        decoding=decoding, length=length, codec_config=self.codec_config, prompt=prompt)
    return np.asarray(codes[:count]), np.asarray(audio[:count])

  def decode(self, codes: np.ndarray) -> np.ndarray:
    """codes [B, K, T] -> audio [B, C, T * hop]."""
    return np.asarray(codec.decode(self.codec_params, jnp.asarray(codes), self.codec_config))

  def encode(self, audio: np.ndarray) -> np.ndarray:
    """audio [B, C, N] at `sample_rate` -> codes [B, K, ceil(N / hop)]."""
    codes = codec.encode(self.codec_params, jnp.asarray(audio, jnp.float32), self.codec_config)
    return np.asarray(codes[:, :self.lm_config.n_q])


def check_compatible(lm: MagnetConfig, codec_config: CodecConfig) -> None:
  """The LM and the codec must agree on codebooks, codebook size and frame rate (one clear error otherwise)."""
  if codec_config.n_q < lm.n_q:
    raise ValueError(f'the codec has {codec_config.n_q} codebooks but the LM models n_q={lm.n_q}')
  if codec_config.bins != lm.card:
    raise ValueError(f'the codec has {codec_config.bins} codes per codebook but the LM has card={lm.card}')
  if not math.isclose(codec_config.frame_rate, lm.frame_rate):
    raise ValueError(f'the codec runs at {codec_config.frame_rate} frames/s but the LM at {lm.frame_rate}')
