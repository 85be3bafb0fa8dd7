"""CLAP (LAION, Wu et al. 2023) in JAX: the text-audio embedder of audiocraft's clap_consistency metric.

Reads a local transformers `ClapModel` folder (e.g. laion/larger_clap_music: config.json, model.safetensors or
pytorch_model.bin, the RoBERTa tokenizer's tokenizer.json or vocab.json + merges.txt, and preprocessor_config.json),
without torch or transformers, and computes what `ClapModel.get_audio_features` / `get_text_features` compute:
- audio: transformers' `ClapFeatureExtractor` with `truncation='rand_trunc'` (the path of non-fused models, whose
  HTSAT takes one spectrogram): the clip is repeated then zero-padded to `max_length_s` ('repeatpad'), its log-mel
  (periodic Hann STFT with reflect padding, librosa's Slaney mel from frequency_min to frequency_max, 10 log10 of
  the power floored at 1e-10) computed in float64 NumPy. A clip longer than `max_length_s` is cut to its first
  `max_length_s` instead of transformers' (and laion_clap's) random crop, so that scores are reproducible. Then the
  HTSAT Swin transformer: batch norm over mel bands, bicubic stretch of the frames to the square image, patch
  embedding, windowed attention with relative position bias (shifted in every second block), patch merging between
  stages, a final LayerNorm, the mean over all patches, and the audio projection.
- text: RoBERTa (a BERT encoder whose position ids start at pad_token_id + 1), its tanh pooler on `<s>`, and the
  text projection. Texts are truncated to 77 tokens, as laion_clap's tokenizer (audiocraft's) does.
Both embeddings are L2-normalised; a clip and its prompt score their cosine (`metrics.clap_similarities`), a set the
mean (the CLAP score).
Models with `enable_fusion` (the fused general-audio CLAPs) are not supported.

Shapes: B batch, N samples, T frames, M mel bands, H x W patch grid, C channels, L = window^2 tokens per window,
S text tokens, E projection dim.
"""
import dataclasses
import functools
import math
import os
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from magnet_jax.audio.spectral import slaney_mel_filterbank
from magnet_jax.evaluation.metrics import clap_similarities
from magnet_jax.text import bert, hf_folder
from magnet_jax.text.layers import HIGHEST, EncoderLayer, activation
from magnet_jax.text.tokenizer import Tokenizer

SAMPLE_RATE = 48000
TEXT_LENGTH = 77  # laion_clap's tokenizer: padding='max_length', truncation=True, max_length=77
_MEL_FLOOR = 1e-10  # transformers' spectrogram mel_floor / power_to_db min_value
_BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm2d's default
_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default: patch embedding, patch merging and final norms
_SHIFT_MASK = -100.0  # Swin's logit offset between cyclically shifted regions


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
  """transformers' ClapFeatureExtractor settings (preprocessor_config.json; its defaults when the file is absent)."""
  feature_size: int = 64  # M
  sampling_rate: int = SAMPLE_RATE
  hop_length: int = 480
  max_length_s: int = 10
  fft_window_size: int = 1024
  frequency_min: float = 0.0
  frequency_max: float = 14000.0
  padding: str = 'repeatpad'  # or 'repeat' / 'pad', for clips shorter than max_length_s

  def __post_init__(self):
    if self.sampling_rate != SAMPLE_RATE:
      raise ValueError(f'unsupported CLAP feature sampling_rate {self.sampling_rate}; expected {SAMPLE_RATE}')
    if self.padding not in ('repeatpad', 'repeat', 'pad'):
      raise ValueError(f"unsupported CLAP feature padding {self.padding!r}; expected 'repeatpad', 'repeat' or 'pad'")

  @property
  def max_samples(self) -> int:
    return int(self.max_length_s * self.sampling_rate)

  @property
  def frames(self) -> int:
    """T of a fitted clip (centred frames)."""
    return self.max_samples // self.hop_length + 1


@dataclasses.dataclass(frozen=True)
class AudioConfig:
  """HTSAT hyperparameters (field names and defaults of transformers' ClapAudioConfig)."""
  window_size: int = 8
  num_mel_bins: int = 64  # M
  spec_size: int = 256  # side of the square image the spectrogram is folded into
  hidden_act: str = 'gelu'
  patch_size: tuple[int, int] = (4, 4)
  patch_stride: tuple[int, int] = (4, 4)
  hidden_size: int = 768  # channels after the last stage
  depths: tuple[int, ...] = (2, 2, 6, 2)
  num_attention_heads: tuple[int, ...] = (4, 8, 16, 32)
  enable_fusion: bool = False
  patch_embed_input_channels: int = 1
  flatten_patch_embeds: bool = True
  patch_embeds_hidden_size: int = 96  # channels of the first stage
  enable_patch_layer_norm: bool = True
  qkv_bias: bool = True
  mlp_ratio: float = 4.0
  layer_norm_eps: float = 1e-5

  def __post_init__(self):
    activation(self.hidden_act)
    if self.enable_fusion:
      raise ValueError('fused CLAP models (enable_fusion) are not supported; use a non-fused one such as '
                       'laion/larger_clap_music')
    if self.patch_embed_input_channels != 1 or not self.flatten_patch_embeds or not self.qkv_bias:
      raise ValueError('unsupported CLAP audio config: expected patch_embed_input_channels 1, flatten_patch_embeds '
                       'and qkv_bias')
    if self.spec_size % self.num_mel_bins:
      raise ValueError(f'CLAP spec_size {self.spec_size} is not a multiple of num_mel_bins {self.num_mel_bins}')
    if self.hidden_size != self.patch_embeds_hidden_size * 2 ** (len(self.depths) - 1):
      raise ValueError(f'CLAP hidden_size {self.hidden_size} != patch_embeds_hidden_size '
                       f'{self.patch_embeds_hidden_size} x 2^{len(self.depths) - 1}')

  @classmethod
  def from_dict(cls, config: dict) -> 'AudioConfig':
    names = {f.name for f in dataclasses.fields(cls)}
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in names}
    for key in ('patch_size', 'patch_stride'):  # an int or a (height, width) pair
      if isinstance(config.get(key), int):
        config[key] = (config[key],) * 2
    return cls(**config)

  @property
  def freq_ratio(self) -> int:
    """How many time slices of the spectrogram are stacked along the image's height."""
    return self.spec_size // self.num_mel_bins

  def grids(self) -> list[tuple[int, int, int]]:
    """(side of the square patch grid, window, shift) of every stage, as transformers' ClapAudioLayer sets them: a
    grid no larger than the window is one unshifted window."""
    grid = [(self.spec_size - size + 2 * ((size - stride) // 2)) // stride + 1  # the patch convolution's output
            for size, stride in zip(self.patch_size, self.patch_stride, strict=True)]
    if grid[0] != grid[1]:
      raise ValueError(f'unsupported CLAP geometry: a {grid[0]}x{grid[1]} patch grid is not square')
    side = grid[0]
    out = []
    for _ in self.depths:
      window, shift = (side, 0) if side <= self.window_size else (self.window_size, self.window_size // 2)
      if side % window:
        raise ValueError(f'unsupported CLAP geometry: a {side}x{side} patch grid is not a multiple of window {window}')
      out.append((side, window, shift))
      side = (side + 1) // 2
    return out


@dataclasses.dataclass(frozen=True)
class ClapConfig:
  """A ClapModel folder's settings."""
  audio: AudioConfig
  text: bert.BertConfig
  features: FeatureConfig
  pad_token_id: int = 1  # RoBERTa's padding id, also the position-id offset
  projection_dim: int = 512  # E
  projection_hidden_act: str = 'relu'

  @classmethod
  def from_dicts(cls, config: dict, preprocessor: dict) -> 'ClapConfig':
    """From config.json (model_type 'clap') and preprocessor_config.json ({} for ClapFeatureExtractor's defaults)."""
    if config.get('model_type') != 'clap':
      raise ValueError(f"not a CLAP config: model_type {config.get('model_type')!r}")
    text = config.get('text_config') or {}
    # ClapTextConfig's defaults where they differ from BertConfig's.
    bert_config = {'vocab_size': 50265, 'max_position_embeddings': 514, 'type_vocab_size': 1}
    bert_config.update({f.name: text[f.name] for f in dataclasses.fields(bert.BertConfig) if f.name in text})
    names = {f.name for f in dataclasses.fields(FeatureConfig)}
    features = FeatureConfig(**{k: v for k, v in preprocessor.items() if k in names})
    audio = AudioConfig.from_dict(config.get('audio_config') or {})
    if features.feature_size != audio.num_mel_bins:
      raise ValueError(f'CLAP feature_size {features.feature_size} != num_mel_bins {audio.num_mel_bins}')
    if features.frames > audio.spec_size * audio.freq_ratio:
      raise ValueError(f'{features.max_length_s} s of audio make {features.frames} frames, more than the '
                       f'{audio.spec_size * audio.freq_ratio} CLAP spec_size allows')
    return cls(audio=audio, text=bert.BertConfig(**bert_config), features=features,
               pad_token_id=text.get('pad_token_id', 1), projection_dim=config.get('projection_dim', 512),
               projection_hidden_act=config.get('projection_hidden_act', 'relu'))


def fit(audio: np.ndarray, config: FeatureConfig) -> np.ndarray:
  """[N] -> [max_samples]: a short clip repeated and/or zero-padded as `config.padding` says, a long one cut to its
  first max_samples (transformers crops at random)."""
  audio = np.asarray(audio, np.float64)
  if audio.ndim != 1 or not len(audio):
    raise ValueError(f'CLAP embeds non-empty mono audio [N], got shape {audio.shape}')
  length = config.max_samples
  if len(audio) >= length:
    return audio[:length]
  if config.padding == 'repeat':
    return np.tile(audio, length // len(audio) + 1)[:length]
  if config.padding == 'repeatpad':
    audio = np.tile(audio, length // len(audio))
  return np.pad(audio, (0, length - len(audio)))


def log_mel(audio: np.ndarray, config: FeatureConfig) -> np.ndarray:
  """[N] (fitted) -> [1 + N // hop, M] float32 log-mel in dB, as ClapFeatureExtractor's rand_trunc path."""
  n_fft = config.fft_window_size
  padded = np.pad(np.asarray(audio, np.float64), n_fft // 2, mode='reflect')
  frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::config.hop_length]
  power = np.abs(np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1], axis=-1)) ** 2  # periodic Hann
  filters = slaney_mel_filterbank(config.sampling_rate, n_fft, config.feature_size, config.frequency_min,
                                  config.frequency_max)
  return (10.0 * np.log10(np.maximum(power @ filters.T, _MEL_FLOOR))).astype(np.float32)


def features(audio: np.ndarray, config: FeatureConfig) -> np.ndarray:
  """[N] mono audio at 48 kHz -> [T, M] float32: the input of `AudioEncoder`."""
  return log_mel(fit(audio, config), config)


def bicubic_matrix(size_in: int, size_out: int) -> np.ndarray:
  """[size_out, size_in] float32: torch's `interpolate(mode='bicubic', align_corners=True)` along one axis (cubic
  convolution with A = -0.75, border samples repeated)."""
  a = -0.75
  near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1
  far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
  source = np.arange(size_out) * ((size_in - 1) / (size_out - 1) if size_out > 1 else 0.0)
  index = np.floor(source).astype(int)
  t = source - index
  matrix = np.zeros((size_out, size_in))
  for offset, weight in zip(range(-1, 3), (far(t + 1), near(t), near(1 - t), far(2 - t)), strict=True):
    np.add.at(matrix, (np.arange(size_out), np.clip(index + offset, 0, size_in - 1)), weight)
  return matrix.astype(np.float32)


def _partition(x, window: int):
  """[B, H, W, C] -> [B * H/window * W/window, window^2, C], windows in row-major order (NumPy or jax)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // window, window, w // window, window, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, window * window, c)


def _unpartition(windows: jax.Array, window: int, height: int, width: int) -> jax.Array:
  """The inverse of `_partition`: [B * nW, window^2, C] -> [B, H, W, C]."""
  c = windows.shape[-1]
  x = windows.reshape(-1, height // window, width // window, window, window, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, height, width, c)


def _relative_position_index(window: int) -> np.ndarray:
  """[L, L] row of the relative position bias table for each (query, key) pair of a window."""
  coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing='ij')).reshape(2, -1)
  relative = coords[:, :, None] - coords[:, None, :] + window - 1
  return relative[0] * (2 * window - 1) + relative[1]


def _shift_mask(side: int, window: int, shift: int) -> np.ndarray:
  """[nW, L, L] logit offsets of a cyclically shifted square grid: -100 between tokens that the roll brought
  together from different regions, 0 elsewhere."""
  region = (np.arange(side) >= side - window).astype(int) + (np.arange(side) >= side - shift)
  ids = _partition((region[:, None] * 3 + region[None, :])[None, :, :, None], window)[..., 0]  # [nW, L]
  return np.where(ids[:, None, :] != ids[:, :, None], _SHIFT_MASK, 0.0).astype(np.float32)


class FrozenBatchNorm(nn.Module):
  """torch BatchNorm in eval mode over the last axis, with its running statistics as parameters."""
  epsilon: float = _BATCH_NORM_EPS

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (x.shape[-1],)
    mean, var = self.param('mean', nn.initializers.zeros, shape), self.param('var', nn.initializers.ones, shape)
    scale, bias = self.param('scale', nn.initializers.ones, shape), self.param('bias', nn.initializers.zeros, shape)
    return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias


class Projection(nn.Module):
  """ClapProjectionLayer: linear2(act(linear1(x))), [B, D] -> [B, E]."""
  dim: int
  act: str
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = activation(self.act)(nn.Dense(self.dim, precision=self.precision, name='linear1')(x))
    return nn.Dense(self.dim, precision=self.precision, name='linear2')(x)


class SwinBlock(nn.Module):
  """A pre-norm transformer layer on the tokens of square windows, cyclically shifted by `shift` first.

  Windowing permutes tokens, and the norms and feed-forward act per token, so the layer is the text encoders'
  `EncoderLayer` run on windows as its batch, with the relative position bias (and shift mask) as logits bias.
  """
  num_heads: int
  window: int
  shift: int
  config: AudioConfig
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, H, W, C] -> [B, H, W, C]."""
    b, h, w, c = x.shape
    n, size = self.num_heads, self.window * self.window
    table = self.param('relative_position_bias_table', nn.initializers.zeros, ((2 * self.window - 1) ** 2, n))
    bias = table[_relative_position_index(self.window)].transpose(2, 0, 1)[None]  # [1, N, L, L]
    if self.shift:
      x = jnp.roll(x, (-self.shift, -self.shift), axis=(1, 2))
      mask = _shift_mask(h, self.window, self.shift)  # square grids only: AudioConfig.grids
      bias = jnp.broadcast_to(bias + mask[:, None], (b, len(mask), n, size, size)).reshape(-1, n, size, size)
    head_dim = c // n
    layer = EncoderLayer(
        n, head_dim, use_bias=True, scale=1 / math.sqrt(head_dim), mlp_dim=int(self.config.mlp_ratio * c),
        act=self.config.hidden_act, gated=False, pre_norm=True, precision=self.precision,
        norm=functools.partial(nn.LayerNorm, epsilon=self.config.layer_norm_eps, use_fast_variance=False),
        name='layer')
    x = _unpartition(layer(_partition(x, self.window), bias), self.window, h, w)
    return jnp.roll(x, (self.shift, self.shift), axis=(1, 2)) if self.shift else x


class PatchMerging(nn.Module):
  """2 x 2 neighbouring patches concatenated, normalised and projected: [B, H, W, C] -> [B, H/2, W/2, 2C]."""
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = jnp.pad(x, ((0, 0), (0, x.shape[1] % 2), (0, x.shape[2] % 2), (0, 0)))
    x = jnp.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)
    x = nn.LayerNorm(epsilon=_NORM_EPS, use_fast_variance=False, name='norm')(x)
    return nn.Dense(x.shape[-1] // 2, use_bias=False, precision=self.precision, name='reduction')(x)


class AudioEncoder(nn.Module):
  """ClapAudioModelWithProjection's embedding (HTSAT + audio projection), before normalisation."""
  config: AudioConfig
  projection_dim: int
  projection_act: str
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, mel: jax.Array) -> jax.Array:
    """[B, T, M] log-mel (T <= spec_size x freq_ratio) -> [B, E]."""
    cfg = self.config
    b, frames, mels = mel.shape
    x = FrozenBatchNorm(name='batch_norm')(mel)
    width, ratio = cfg.spec_size * cfg.freq_ratio, cfg.freq_ratio
    if frames < width:  # stretched to the image's frame count, as transformers' reshape_mel2img
      x = jnp.einsum('st,btm->bsm', bicubic_matrix(frames, width), x, precision=self.precision)
    # The time axis is cut into `ratio` slices stacked along the height: image[j M + m, t] = x[j width/ratio + t, m].
    image = x.reshape(b, ratio, width // ratio, mels).transpose(0, 1, 3, 2).reshape(b, ratio * mels, -1)[..., None]
    padding = [((size - stride) // 2,) * 2 for size, stride in zip(cfg.patch_size, cfg.patch_stride, strict=True)]
    x = nn.Conv(cfg.patch_embeds_hidden_size, cfg.patch_size, cfg.patch_stride, padding, precision=self.precision,
                name='patch_proj')(image)  # [B, H, W, C]
    if cfg.enable_patch_layer_norm:
      x = nn.LayerNorm(epsilon=_NORM_EPS, use_fast_variance=False, name='patch_norm')(x)
    for i, (depth, heads, (_, window, shift)) in enumerate(zip(cfg.depths, cfg.num_attention_heads, cfg.grids(),
                                                               strict=True)):
      for j in range(depth):
        x = SwinBlock(heads, window, shift if j % 2 else 0, cfg, self.precision, name=f'stage_{i}_block_{j}')(x)
      if i < len(cfg.depths) - 1:
        x = PatchMerging(self.precision, name=f'stage_{i}_merge')(x)
    x = nn.LayerNorm(epsilon=_NORM_EPS, use_fast_variance=False, name='norm')(x)
    pooled = x.mean(axis=(1, 2))  # transformers regroups the patches before its average pool: the same mean
    return Projection(self.projection_dim, self.projection_act, self.precision, name='projection')(pooled)


class TextEncoder(nn.Module):
  """ClapTextModelWithProjection's embedding (RoBERTa, pooler, text projection), before normalisation."""
  config: bert.BertConfig
  pad_token_id: int
  projection_dim: int
  projection_act: str
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, input_ids: jax.Array, mask: jax.Array) -> jax.Array:
    """input_ids [B, S] int, mask [B, S] bool -> [B, E]."""
    real = (input_ids != self.pad_token_id).astype(jnp.int32)
    positions = jnp.cumsum(real, axis=1) * real + self.pad_token_id  # RoBERTa: padding keeps position pad_token_id
    states = bert.BertEncoder(self.config, self.precision, name='encoder')(input_ids, mask, positions)
    pooled = jnp.tanh(nn.Dense(self.config.hidden_size, precision=self.precision, name='pooler')(states[:, 0]))
    return Projection(self.projection_dim, self.projection_act, self.precision, name='projection')(pooled)


def _audio_key_map(config: AudioConfig) -> dict[str, hf_folder.ParamPath]:
  """transformers ClapModel key -> AudioEncoder param path."""
  dense, norm = hf_folder.dense_keys, hf_folder.norm_keys
  enc = 'audio_model.audio_encoder'
  keys = {f'{enc}.batch_norm.weight': ('batch_norm', 'scale'), f'{enc}.batch_norm.bias': ('batch_norm', 'bias'),
          f'{enc}.batch_norm.running_mean': ('batch_norm', 'mean'),
          f'{enc}.batch_norm.running_var': ('batch_norm', 'var'),
          **dense(f'{enc}.patch_embed.proj', 'patch_proj'), **norm(f'{enc}.norm', 'norm'),
          **dense('audio_projection.linear1', 'projection', 'linear1'),
          **dense('audio_projection.linear2', 'projection', 'linear2')}
  if config.enable_patch_layer_norm:
    keys.update(norm(f'{enc}.patch_embed.norm', 'patch_norm'))
  for i, depth in enumerate(config.depths):
    for j in range(depth):
      key, block = f'{enc}.layers.{i}.blocks.{j}', f'stage_{i}_block_{j}'
      keys[f'{key}.attention.self.relative_position_bias_table'] = (block, 'relative_position_bias_table')
      for torch_name, name in (('self.query', 'q'), ('self.key', 'k'), ('self.value', 'v'), ('output.dense', 'o')):
        keys.update(dense(f'{key}.attention.{torch_name}', block, 'layer', 'attn', name))
      keys.update(norm(f'{key}.layernorm_before', block, 'layer', 'attn_norm'))
      keys.update(norm(f'{key}.layernorm_after', block, 'layer', 'ffn_norm'))
      keys.update(dense(f'{key}.intermediate.dense', block, 'layer', 'ffn', 'wi'))
      keys.update(dense(f'{key}.output.dense', block, 'layer', 'ffn', 'wo'))
    if i < len(config.depths) - 1:
      keys[f'{enc}.layers.{i}.downsample.reduction.weight'] = (f'stage_{i}_merge', 'reduction', 'kernel')
      keys.update(norm(f'{enc}.layers.{i}.downsample.norm', f'stage_{i}_merge', 'norm'))
  return keys


def _text_key_map(config: bert.BertConfig) -> dict[str, hf_folder.ParamPath]:
  """transformers ClapModel key -> TextEncoder param path."""
  dense = hf_folder.dense_keys
  keys = {f'text_model.{key}': ('encoder', *path) for key, path in bert.key_map(config).items()}
  return {**keys, **dense('text_model.pooler.dense', 'pooler'),
          **dense('text_projection.linear1', 'projection', 'linear1'),
          **dense('text_projection.linear2', 'projection', 'linear2')}


def _is_unused(key: str) -> bool:
  """Buffers, and the contrastive loss's temperatures."""
  return key.endswith(('relative_position_index', 'num_batches_tracked', 'position_ids', 'token_type_ids')) or (
      key in ('logit_scale_a', 'logit_scale_t'))


def load(folder: str | os.PathLike) -> tuple[ClapConfig, dict]:
  """(config, {'audio': AudioEncoder params, 'text': TextEncoder params}) from a transformers ClapModel folder.

  Raises:
    FileNotFoundError: no such folder, or no config.json in it.
    ValueError: not a CLAP config, or one this port does not support (fusion).
    CheckpointError: no weights file, a corrupt one, or unknown / missing / misshapen keys.
  """
  folder = hf_folder.check_folder(folder, 'CLAP model')
  config = ClapConfig.from_dicts(hf_folder.read_json(folder, 'config.json'),
                                 hf_folder.read_json(folder, 'preprocessor_config.json', required=False))
  state = hf_folder.read_weights(folder)
  conv = 'audio_model.audio_encoder.patch_embed.proj.weight'
  if conv in state:  # `convert` reverses a kernel's axes: [O, I, kh, kw] with kh, kw swapped becomes HWIO
    state[conv] = np.swapaxes(state[conv], 2, 3)
  audio, text = _modules(config)
  rng = jax.random.key(0)
  mel = jnp.zeros((1, config.features.frames, config.audio.num_mel_bins))
  ids = jnp.zeros((1, 1), jnp.int32)
  expected_audio = jax.eval_shape(audio.init, rng, mel)['params']
  expected_text = jax.eval_shape(text.init, rng, ids, ids > 0)['params']
  is_audio = lambda key: key.startswith(('audio_model.', 'audio_projection.'))
  params = {'audio': hf_folder.convert({k: v for k, v in state.items() if is_audio(k)},
                                       _audio_key_map(config.audio), expected_audio, _is_unused),
            'text': hf_folder.convert({k: v for k, v in state.items() if not is_audio(k)},
                                      _text_key_map(config.text), expected_text, _is_unused)}
  return config, jax.tree.map(jnp.asarray, params)


def _modules(config: ClapConfig) -> tuple[AudioEncoder, TextEncoder]:
  return (AudioEncoder(config.audio, config.projection_dim, config.projection_hidden_act),
          TextEncoder(config.text, config.pad_token_id, config.projection_dim, config.projection_hidden_act))


def _normalize(x: jax.Array) -> jax.Array:
  """torch.nn.functional.normalize: x / max(||x||, 1e-12) over the last axis."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class ClapScorer:
  """CLAP embeddings of clips and texts from a local ClapModel folder, and their CLAP score.

  Attributes:
    name: embedder name/version, 'clap-<folder name>/1'.
    sample_rate: of the audio `embed_audio` takes (48 kHz).
    config: the folder's `ClapConfig`.
  """
  sample_rate = SAMPLE_RATE

  def __init__(self, folder: str, batch_size: int = 8, progress: bool = True):
    """Loads the model and tokenizer (errors: `load`, and FileNotFoundError for missing tokenizer files)."""
    self.config, self.params = load(folder)
    self.tokenizer = Tokenizer.from_folder(folder, kind='roberta', max_length=TEXT_LENGTH)
    self.name = f'clap-{os.path.basename(os.path.normpath(folder))}/1'
    self.batch_size = batch_size
    self.progress = progress
    audio, text = _modules(self.config)
    self._audio = jax.jit(lambda params, mel: _normalize(audio.apply({'params': params}, mel)))
    self._text = jax.jit(lambda params, ids, mask: _normalize(text.apply({'params': params}, ids, mask)))

  def _pad(self, batch: np.ndarray) -> np.ndarray:
    """One compiled shape: the last batch is padded to `batch_size` rows."""
    return np.pad(batch, [(0, self.batch_size - len(batch))] + [(0, 0)] * (batch.ndim - 1))

  def embed_audio(self, clips: Sequence[tuple[str, np.ndarray]], desc: str = 'clap') -> np.ndarray:
    """[(name, mono float32 audio [N] at 48 kHz)] -> [len(clips), E] L2-normalised audio embeddings.

    Raises:
      ValueError: no clips, or an empty one.
    """
    if not clips:
      raise ValueError('no clips to embed with CLAP')
    out = []
    with tqdm.tqdm(total=len(clips), desc=desc, unit='clip', disable=not self.progress) as bar:
      for start in range(0, len(clips), self.batch_size):
        batch = []
        for name, audio in clips[start:start + self.batch_size]:
          try:
            batch.append(features(audio, self.config.features))
          except ValueError as e:
            raise ValueError(f'{name}: {e}') from e
        embeddings = self._audio(self.params['audio'], self._pad(np.stack(batch)))
        out.append(np.asarray(embeddings)[:len(batch)])
        bar.update(len(batch))
    return np.concatenate(out)

  def embed_text(self, texts: Sequence[str]) -> np.ndarray:
    """[N] texts -> [N, E] L2-normalised text embeddings (each text truncated to 77 tokens).

    Raises:
      ValueError: no texts.
    """
    if not len(texts):
      raise ValueError('no texts to embed with CLAP')
    out = []
    for start in range(0, len(texts), self.batch_size):
      batch = list(texts[start:start + self.batch_size])
      ids, mask = self.tokenizer(batch, pad_to=TEXT_LENGTH)  # one length: at most 77 tokens, padded to 77
      embeddings = self._text(self.params['text'], self._pad(ids), self._pad(mask))
      out.append(np.asarray(embeddings)[:len(batch)])
    return np.concatenate(out)

  def similarities(self, clips: Sequence[tuple[str, np.ndarray]], texts: Sequence[str]) -> np.ndarray:
    """[N] cosine of each clip's embedding and its text's (`metrics.clap_similarities`)."""
    if len(clips) != len(texts):
      raise ValueError(f'CLAP score needs one text per clip, got {len(clips)} clips and {len(texts)} texts')
    return clap_similarities(self.embed_audio(clips), self.embed_text(texts))

  def score(self, clips: Sequence[tuple[str, np.ndarray]], texts: Sequence[str]) -> float:
    """The CLAP score: the mean of `similarities` (audiocraft's clap_consistency)."""
    return float(np.mean(self.similarities(clips, texts)))
