"""The LM's hyperparameters as a frozen dataclass, built from an ml_collections config.

Names follow audiocraft's `transformer_lm` config keys (`n_q`, `card`, `dim`, `num_heads`, `num_layers`,
`hidden_scale`, `subcodes_context`, `span_len`) so a released checkpoint's `xp.cfg` maps onto it one to one.

Shape letters used in docstrings across the package:
  B batch, K codebooks (RVQ levels), T frames, S text tokens, D model dim, Dt text-encoder dim,
  N heads, H head dim, F mlp dim, V card (codebook size), L layers.
"""
import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


@dataclasses.dataclass(frozen=True)
class MagnetConfig:
  """MAGNeT LM hyperparameters (defaults: magnet-small-10secs)."""
  n_q: int = 4                  # K: codebooks / RVQ levels.
  card: int = 2048              # V: codes per codebook; id `card` is the mask token.
  dim: int = 1024               # D: model width.
  num_heads: int = 16           # N: attention heads; head dim H = D / N.
  num_layers: int = 24          # L: transformer layers.
  hidden_scale: int = 4         # F = hidden_scale * D (non-gated GELU MLP).
  text_dim: int = 768           # Dt: text-encoder width (t5-base 768, t5-large 1024).
  subcodes_context: int = 5     # levels k > 0 attend to |i - j| <= subcodes_context; -1 = unrestricted.
  span_len: int = 3             # span length (frames) for masking in training and decoding.
  causal: bool = False          # True for the autoregressive rescorer (MusicGen-style LM).
  codebooks_pattern: str = 'parallel'  # 'parallel' (MAGNeT) | 'delay' (Hybrid-MAGNeT, MusicGen).
  frame_rate: int = 50          # codec frames per second.
  segment_duration: float = 10.0  # training segment (s); 10 s -> T = 500.
  max_period: float = 10000.0   # sinusoidal positional embedding period.
  norm_eps: float = 1e-5        # LayerNorm epsilon.
  dtype: str = 'float32'        # compute dtype: float32 | bfloat16 | float16 (params stay float32).
  param_dtype: str = 'float32'  # parameter storage dtype.
  scan_layers: bool = True      # stack layers with nn.scan (one compiled layer; params get a leading L axis).
  remat: bool = False           # rematerialise each layer in the backward pass (training memory).

  def __post_init__(self):
    if self.dim % self.num_heads:
      raise ValueError(f'model.dim={self.dim} is not a multiple of model.num_heads={self.num_heads}')
    if self.dim % 2:
      raise ValueError(f'model.dim={self.dim} must be even (sinusoidal positions)')
    if self.codebooks_pattern not in ('parallel', 'delay'):
      raise ValueError(f"model.codebooks_pattern={self.codebooks_pattern!r}; expected 'parallel' or 'delay'")
    for name in ('dtype', 'param_dtype'):
      if getattr(self, name) not in _DTYPES:
        raise ValueError(f'model.{name}={getattr(self, name)!r}; expected one of {sorted(_DTYPES)}')
    for name in ('n_q', 'card', 'num_layers', 'hidden_scale', 'text_dim', 'span_len', 'frame_rate'):
      if getattr(self, name) < 1:
        raise ValueError(f'model.{name} must be >= 1, got {getattr(self, name)}')

  @property
  def head_dim(self) -> int:
    return self.dim // self.num_heads

  @property
  def mlp_dim(self) -> int:
    return self.hidden_scale * self.dim

  @property
  def mask_id(self) -> int:
    """Token id of the mask token (audiocraft's `special_token_id`)."""
    return self.card

  @property
  def sequence_length(self) -> int:
    """Frames in a training segment (T)."""
    return int(self.segment_duration * self.frame_rate)

  @property
  def compute_dtype(self):
    return _DTYPES[self.dtype]

  @property
  def params_dtype(self):
    return _DTYPES[self.param_dtype]

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> 'MagnetConfig':
    """Builds from a mapping (e.g. `config.model` of an ml_collections config); unknown keys are an error."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
      raise ValueError(f'unknown model config key(s) {unknown}; valid keys: {sorted(fields)}')
    return cls(**dict(values))
