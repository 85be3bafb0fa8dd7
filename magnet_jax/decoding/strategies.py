"""Decoding strategies behind one interface: what a window program calls to decode one window.

A `Decoder` is a frozen, hashable description (a static argument of the compiled program) with
  capabilities  what it can do (`Capabilities`), which a caller checks before it plans or compiles anything;
  check         the host-side checks of one call (its decoding config and window length);
  decode        the traceable decoding of one window -> `DecodeState`.

`DECODERS` holds them by name; adding one is writing a class with these three members and calling `register`:
  masked    MAGNeT's masked decoding (`generate.masked_decode`): every capability.
  rescored  masked decoding whose span scores mix in an autoregressive LM's probabilities (`rescoring.py`); its
            config is static, its parameters come as `extra_params`.
  hybrid    Hybrid-MAGNeT (`hybrid.py`): an autoregressive prefix, then masked decoding; from text only, within
            one window, guided against the null condition, without step reports.

Shapes: B batch, K levels, T frames, S text tokens, Dt text dim.
"""
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import jax

from magnet_jax.decoding.config import DecodingConfig, output_length
from magnet_jax.decoding.decoder import DecodeState, StepHook
from magnet_jax.decoding.generate import masked_decode
from magnet_jax.decoding.guidance import Uncond
from magnet_jax.decoding.hybrid import HybridConfig, hybrid_decode
from magnet_jax.models.config import MagnetConfig


@dataclasses.dataclass(frozen=True)
class Capabilities:
  """What a decoding strategy can do."""
  known_frames: bool = True      # keeps given frames (audio prompts, infilling, outpainting, loops).
  negative_prompts: bool = True  # the unconditional half of guidance may be a negative prompt's states.
  progress: bool = True          # reports every step to the host (`StepHook`) and can stop between steps.
  long_form: bool = True         # decodes several windows that continue each other.


class Decoder(Protocol):
  """A decoding strategy (see the module docstring)."""
  name: ClassVar[str]
  capabilities: ClassVar[Capabilities]

  def check(self, lm_config: MagnetConfig, decoding: DecodingConfig, length: int) -> None:
    """Raises ValueError (one line) for a decoding config or a window length of T = `length` it cannot run."""

  def decode(self, params, cond: jax.Array, cond_mask: jax.Array, rng: jax.Array, *, lm_config: MagnetConfig,
             decoding: DecodingConfig, codes: jax.Array, known: jax.Array, uncond: Uncond = None,
             extra_params: Any = None, on_step: StepHook | None = None) -> DecodeState:
    """Decodes the frames of `codes` [B, K, T] that are not `known` ([B, T] or [B, K, T]) with the LM `params`,
    conditions `cond` [B, S, Dt] / `cond_mask` [B, S] and [B] keys `rng`; traceable."""


def unsupported(decoder: Decoder, what: str) -> ValueError:
  """The one-line error for asking `decoder` for something its capabilities lack."""
  return ValueError(f'{what} needs a decoding strategy that supports it; the {decoder.name} strategy '
                    f'({type(decoder).__doc__.splitlines()[0].rstrip(".")}) does not')


@dataclasses.dataclass(frozen=True)
class MaskedDecoding:
  """MAGNeT's masked decoding."""
  name: ClassVar[str] = 'masked'
  capabilities: ClassVar[Capabilities] = Capabilities()

  def check(self, lm_config: MagnetConfig, decoding: DecodingConfig, length: int) -> None:
    if decoding.rescorer_weight > 0:
      raise ValueError('rescorer_weight > 0 needs the rescored strategy (a rescorer: pretrained.load_rescorer, '
                       '--rescorer DIR)')

  def decode(self, params, cond, cond_mask, rng, *, lm_config, decoding, codes, known, uncond=None,
             extra_params=None, on_step=None) -> DecodeState:
    return masked_decode(params, cond, cond_mask, rng, lm_config=lm_config, decoding=decoding, codes=codes,
                         known=known, uncond=uncond, on_step=on_step)


@dataclasses.dataclass(frozen=True)
class RescoredDecoding:
  """masked decoding rescored by an autoregressive LM."""
  name: ClassVar[str] = 'rescored'
  capabilities: ClassVar[Capabilities] = Capabilities()
  rescorer_config: MagnetConfig  # the causal (MusicGen-style) LM; its parameters are `extra_params`

  def check(self, lm_config: MagnetConfig, decoding: DecodingConfig, length: int) -> None:
    if not decoding.rescorer_weight > 0:
      raise ValueError('the rescored strategy needs rescorer_weight > 0')

  def decode(self, params, cond, cond_mask, rng, *, lm_config, decoding, codes, known, uncond=None,
             extra_params=None, on_step=None) -> DecodeState:
    return masked_decode(params, cond, cond_mask, rng, lm_config=lm_config, decoding=decoding, codes=codes,
                         known=known, rescorer_params=extra_params, rescorer_config=self.rescorer_config,
                         uncond=uncond, on_step=on_step)


@dataclasses.dataclass(frozen=True)
class HybridDecoding:
  """Hybrid-MAGNeT: an autoregressive prefix, then masked decoding, from text only within one window."""
  name: ClassVar[str] = 'hybrid'
  capabilities: ClassVar[Capabilities] = Capabilities(known_frames=False, negative_prompts=False, progress=False,
                                                      long_form=False)
  hybrid: HybridConfig = HybridConfig()

  @classmethod
  def for_lm(cls, lm_config: MagnetConfig) -> 'HybridDecoding':
    """The default for an LM: its prefix capped at half the model's window, top-k at card."""
    return cls(HybridConfig(prefix_length=min(HybridConfig.prefix_length, lm_config.sequence_length // 2),
                            top_k=min(HybridConfig.top_k, lm_config.card)))

  def check(self, lm_config: MagnetConfig, decoding: DecodingConfig, length: int) -> None:
    if lm_config.codebooks_pattern != 'delay':
      raise ValueError('hybrid decoding needs an LM trained with the delay codebook pattern (Hybrid-MAGNeT)')
    if decoding.rescorer_weight > 0:
      raise ValueError('rescoring applies to MAGNeT checkpoints, not to Hybrid-MAGNeT ones')
    if output_length(length, lm_config.span_len, decoding.span_arrangement) <= self.hybrid.prefix_length:
      raise ValueError(f'a Hybrid-MAGNeT checkpoint generates from text only, more than its autoregressive prefix '
                       f'of {self.hybrid.prefix_length} frames; got {length}')

  def decode(self, params, cond, cond_mask, rng, *, lm_config, decoding, codes, known, uncond=None,
             extra_params=None, on_step=None) -> DecodeState:
    return hybrid_decode(params, cond, cond_mask, rng, lm_config=lm_config, decoding=decoding, hybrid=self.hybrid,
                         length=codes.shape[-1])


DECODERS: dict[str, Callable[..., Decoder]] = {}


def register(name: str, factory: Callable[..., Decoder]) -> None:
  """Makes a strategy available by `name` (`decoder(name, ...)`)."""
  DECODERS[name] = factory


def decoder(name: str, *args, **kwargs) -> Decoder:
  """The strategy registered as `name`, built with `args` / `kwargs` (e.g. a rescorer's config).

  Raises:
    ValueError: an unknown name.
  """
  if name not in DECODERS:
    raise ValueError(f'unknown decoding strategy {name!r}; known: {sorted(DECODERS)}')
  return DECODERS[name](*args, **kwargs)


def default_for(lm_config: MagnetConfig) -> Decoder:
  """The strategy an LM was trained for: hybrid for the delay codebook pattern, masked otherwise."""
  return HybridDecoding.for_lm(lm_config) if lm_config.codebooks_pattern == 'delay' else MaskedDecoding()


for _strategy in (MaskedDecoding, RescoredDecoding, HybridDecoding):
  register(_strategy.name, _strategy)
