"""MAGNeT's decoding hyperparameters (`DecodingConfig`), checked once where they enter (a pipeline, a command, a
server request) and passed through as one frozen object."""
import dataclasses
import math
import numbers

from magnet_jax.models.config import MagnetConfig


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
    for field in dataclasses.fields(self):  # a NaN or inf would decode garbage and be written as JSON `Infinity`
      value = getattr(self, field.name)
      if field.type in (float, 'float') and not (isinstance(value, numbers.Real) and math.isfinite(value)):
        raise ValueError(f'decoding.{field.name} must be a finite number, got {value!r}')
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


def check_config(config: MagnetConfig, decoding: DecodingConfig) -> None:
  """Raises ValueError for a causal LM, a decoding_steps/n_q mismatch or top_k > card."""
  if config.causal:
    raise ValueError('MAGNeT decoding needs a non-causal LM config (causal=True is the autoregressive rescorer)')
  if len(decoding.decoding_steps) != config.n_q:
    raise ValueError(f'decoding.decoding_steps has {len(decoding.decoding_steps)} entries for n_q={config.n_q} '
                     'levels')
  if decoding.top_k > config.card:
    raise ValueError(f'decoding.top_k={decoding.top_k} exceeds card={config.card}')


def output_length(length: int, span_len: int, span_arrangement: str) -> int:
  """Frames generated for a requested `length`: non-overlapping spans trim it to a multiple of span_len."""
  return (length // span_len) * span_len if span_len > 1 and span_arrangement == 'nonoverlap' else length

