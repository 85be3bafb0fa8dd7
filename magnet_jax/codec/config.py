"""Hyperparameters of an EnCodec codec (SEANet autoencoder + residual vector quantizer).

Field names follow audiocraft's `seanet` / `rvq` / `encodec` config keys (config/model/encodec/default.yaml).
"""
import dataclasses
import math

_PAD_MODES = ('constant', 'reflect')


@dataclasses.dataclass(frozen=True)
class CodecConfig:
  """An EnCodec architecture. Frozen and hashable, so it can be a static argument of `jax.jit`."""
  sample_rate: int = 32000  # audio samples per second
  channels: int = 1  # audio channels C
  ratios: tuple[int, ...] = (8, 5, 4, 4)  # up-sampling ratios in decoder order; the encoder uses them reversed
  n_filters: int = 64  # width of the first (encoder) / last (decoder) convolution; doubles at every ratio
  n_residual_layers: int = 1  # residual blocks per ratio, with dilations dilation_base ** j
  dimension: int = 128  # latent dimension D (also the codebook vector size)
  n_q: int = 4  # codebooks K in the residual vector quantizer
  bins: int = 2048  # entries per codebook (the LM's `card`)
  lstm: int = 2  # LSTM layers (with a skip) at the encoder's end and the decoder's start; 0 for none
  kernel_size: int = 7  # kernel of the first convolution
  last_kernel_size: int = 7  # kernel of the last convolution
  residual_kernel_size: int = 3  # kernel of the first convolution in a residual block
  dilation_base: int = 2  # dilation of the j-th residual block is dilation_base ** j
  compress: int = 2  # residual blocks run at width // compress
  true_skip: bool = True  # identity residual shortcut; False: a kernel-1 convolution (HF use_conv_shortcut)
  pad_mode: str = 'reflect'  # 'reflect' (HF facebook/encodec_32khz) or 'constant' (audiocraft default)
  causal: bool = False  # all padding on the left; transposed convolutions trim on the right
  trim_right_ratio: float = 1.0  # causal only: share of a transposed convolution's trim taken on the right
  elu_alpha: float = 1.0  # ELU activation_params.alpha

  def __post_init__(self):
    object.__setattr__(self, 'ratios', tuple(int(r) for r in self.ratios))
    if self.pad_mode not in _PAD_MODES:
      raise ValueError(f'pad_mode must be one of {_PAD_MODES}, got {self.pad_mode!r}')
    if not self.causal and self.trim_right_ratio != 1.0:
      raise ValueError('trim_right_ratio != 1.0 only makes sense for causal convolutions')
    if not self.ratios or min(self.ratios) < 1:
      raise ValueError(f'ratios must be positive integers, got {self.ratios}')

  @property
  def hop_length(self) -> int:
    """Audio samples per latent frame (product of the ratios)."""
    return math.prod(self.ratios)

  @property
  def frame_rate(self) -> float:
    """Latent frames (code steps T) per second."""
    return self.sample_rate / self.hop_length

  def num_frames(self, num_samples: int) -> int:
    """Frames T the encoder emits for N audio samples: ceil(N / hop_length)."""
    return -(-num_samples // self.hop_length)

  @classmethod
  def encodec_32khz(cls) -> 'CodecConfig':
    """MAGNeT music codec: transformers' facebook/encodec_32khz (4 x 2048 codes at 50 Hz)."""
    return cls()

  @classmethod
  def encodec_16khz(cls) -> 'CodecConfig':
    """audio-MAGNeT codec: audiocraft's encodec_large_nq4_s320 (4 x 2048 codes at 50 Hz, constant padding)."""
    return cls(sample_rate=16000, ratios=(8, 5, 4, 2), pad_mode='constant')
