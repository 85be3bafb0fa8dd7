"""Audio Spectrogram Transformer (Gong et al., 2021) in JAX: an AudioSet classifier for the paper's KL metric.

transformers' `ASTForAudioClassification` (e.g. MIT/ast-finetuned-audioset-10-10-0.4593, 527 AudioSet classes),
read from a local transformers folder (config.json with id2label; model.safetensors or pytorch_model.bin; an
optional preprocessor_config.json), without torch, torchaudio or transformers. Same computation as
`ASTFeatureExtractor` + the model:
  - front end: Kaldi-compatible log-mel filterbank at 16 kHz (torchaudio.compliance.kaldi.fbank as the extractor
    calls it: 25 ms frames every 10 ms without edge padding, DC offset removed, pre-emphasis 0.97, symmetric Hann
    window, 512-point power spectrum, `num_mel_bins` Kaldi mel triangles from 20 Hz to Nyquist, log floored at
    float32 eps, no dither), zero-padded or cut to `max_length` frames, then (x - mean) / (2 std);
  - network: 16x16 patches (strides `frequency_stride`, `time_stride`), cls and distillation tokens, learned
    position embeddings, pre-norm ViT layers, a final LayerNorm, pooled = (cls + distillation) / 2, then the head
    (LayerNorm + Linear) -> logits.

The KL metric follows audiocraft's `PasstKLDivergenceMetric` (metrics/kld.py) with AST in place of PaSST: a clip is
cut into consecutive segments of the model's length (`max_length` frames, 10.24 s), a trailing segment of 0.15 s
or less is dropped (kept when it is the whole clip), each segment's label distribution is the softmax of its
logits, and a clip's distribution is the mean over its segments.

Shapes: B segments, N samples, T frames (`max_length`), M mel bins, P patches, D hidden size, L labels.
"""
import dataclasses
import functools
import os
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from magnet_jax.text import hf_folder
from magnet_jax.text.layers import HIGHEST, EncoderLayer, activation

SAMPLE_RATE = 16000
FRAME = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512  # the frame rounded up to a power of two, as Kaldi does
PREEMPHASIS = 0.97
LOW_FREQ = 20.0  # Kaldi's default lowest mel frequency; the highest is Nyquist
LOG_FLOOR = float(np.finfo(np.float32).eps)  # Kaldi floors mel energies at float eps before the log
MIN_SEGMENT_SAMPLES = int(0.15 * SAMPLE_RATE)  # audiocraft drops segments this short (they break PaSST)
AUDIOSET_MEAN, AUDIOSET_STD = -4.2677393, 4.5689974  # ASTFeatureExtractor's defaults
MODEL_TYPE = 'audio-spectrogram-transformer'


@dataclasses.dataclass(frozen=True)
class AstConfig:
  """Hyperparameters of an AST classifier (field names and defaults of transformers' ASTConfig), its labels and
  its feature extractor's normalisation."""
  labels: tuple[str, ...]  # L label names, from id2label
  hidden_size: int = 768  # D
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072  # feed-forward hidden dim
  hidden_act: str = 'gelu'
  layer_norm_eps: float = 1e-12
  patch_size: int = 16
  qkv_bias: bool = True  # the only one supported: our attention has biases on all four projections
  frequency_stride: int = 10
  time_stride: int = 10
  max_length: int = 1024  # T
  num_mel_bins: int = 128  # M
  do_normalize: bool = True
  mean: float = AUDIOSET_MEAN
  std: float = AUDIOSET_STD

  def __post_init__(self):
    activation(self.hidden_act)
    if not self.qkv_bias:
      raise ValueError('unsupported AST config: qkv_bias false')
    if not isinstance(self.patch_size, int):
      raise ValueError(f'unsupported AST config: patch_size {self.patch_size!r} (only square patches)')
    if self.hidden_size % self.num_attention_heads:
      raise ValueError(f'hidden_size {self.hidden_size} is not a multiple of {self.num_attention_heads} heads')
    if min(self.num_mel_bins, self.max_length) < self.patch_size:
      raise ValueError(f'num_mel_bins {self.num_mel_bins} and max_length {self.max_length} must be at least '
                       f'patch_size {self.patch_size}')

  @property
  def grid(self) -> tuple[int, int]:
    """(frequency, time) patches: P = their product."""
    return ((self.num_mel_bins - self.patch_size) // self.frequency_stride + 1,
            (self.max_length - self.patch_size) // self.time_stride + 1)

  @classmethod
  def from_dicts(cls, config: dict, preprocessor: dict) -> 'AstConfig':
    """Reads config.json and preprocessor_config.json ({} when absent) dicts; unrelated keys are ignored.

    Raises:
      ValueError: not an AST classifier config, or a preprocessor that does not match the model.
    """
    architectures = config.get('architectures') or ['ASTForAudioClassification']
    if config.get('model_type') != MODEL_TYPE or 'ASTForAudioClassification' not in architectures:
      raise ValueError(f"not an AST classifier config: model_type {config.get('model_type')!r}, "
                       f'architectures {architectures}')
    id2label = config.get('id2label') or {}
    labels = tuple(id2label[k] for k in sorted(id2label, key=int))
    if not labels:
      raise ValueError('AST config has no id2label')
    names = {f.name for f in dataclasses.fields(cls)} - {'labels', 'do_normalize', 'mean', 'std'}
    fields = {k: v for k, v in config.items() if k in names}
    fields.update({k: preprocessor[k] for k in ('do_normalize', 'mean', 'std') if k in preprocessor})
    out = cls(labels=labels, **fields)
    for key, expected in (('sampling_rate', SAMPLE_RATE), ('num_mel_bins', out.num_mel_bins),
                          ('max_length', out.max_length)):
      if preprocessor.get(key, expected) != expected:
        raise ValueError(f'preprocessor_config.json has {key} {preprocessor[key]}, the model needs {expected}')
    return out


@functools.cache
def kaldi_mel_banks(num_mel_bins: int) -> np.ndarray:
  """[M, N_FFT // 2 + 1] float64 Kaldi mel filters (torchaudio's `get_mel_banks`): triangles equally spaced on the
  mel scale 1127 ln(1 + f / 700) from LOW_FREQ to Nyquist, evaluated at the bins' mel values; Nyquist's bin is 0."""
  mel = lambda f: 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)
  low, high = mel(LOW_FREQ), mel(SAMPLE_RATE / 2)
  delta = (high - low) / (num_mel_bins + 1)
  left = low + delta * np.arange(num_mel_bins)[:, None]
  bins = mel(SAMPLE_RATE / N_FFT * np.arange(N_FFT // 2))[None, :]
  banks = np.maximum(0.0, np.minimum((bins - left) / delta, (left + 2 * delta - bins) / delta))
  return np.pad(banks, ((0, 0), (0, 1)))


def fbank(audio: np.ndarray, num_mel_bins: int) -> np.ndarray:
  """[N] audio at 16 kHz -> [1 + (N - 400) // 160, M] float32 Kaldi log-mel filterbank (no frame when N < 400)."""
  audio = np.asarray(audio, np.float64)
  frames = 1 + (len(audio) - FRAME) // HOP if len(audio) >= FRAME else 0
  x = audio[np.arange(frames)[:, None] * HOP + np.arange(FRAME)]
  x = x - x.mean(-1, keepdims=True)
  # Kaldi pre-emphasises the first sample of a frame against itself.
  x = np.concatenate([x[:, :1] * (1 - PREEMPHASIS), x[:, 1:] - PREEMPHASIS * x[:, :-1]], axis=-1)
  power = np.abs(np.fft.rfft(x * np.hanning(FRAME), n=N_FFT, axis=-1)) ** 2
  return np.log(np.maximum(power @ kaldi_mel_banks(num_mel_bins).T, LOG_FLOOR)).astype(np.float32)


def features(audio: np.ndarray, config: AstConfig) -> np.ndarray:
  """[N] audio at 16 kHz -> [T, M] the model's input, as ASTFeatureExtractor makes it: the filterbank zero-padded
  or cut to T frames, then normalised (padding included)."""
  spec = fbank(audio, config.num_mel_bins)[:config.max_length]
  spec = np.pad(spec, ((0, config.max_length - len(spec)), (0, 0)))
  return (spec - config.mean) / (2 * config.std) if config.do_normalize else spec


def segments(audio: np.ndarray, max_length: int) -> list[np.ndarray]:
  """[N] -> [N_s] consecutive segments of `max_length` frames each (10.24 s for 1024), the last one shorter.

  Segments start every max_length * 160 samples and each reads the 240 samples past its end that its last frames
  need, so their frames are exactly those of the whole clip. A trailing segment of MIN_SEGMENT_SAMPLES or fewer is
  dropped, as audiocraft drops it, unless it is the only one.
  """
  step = max_length * HOP
  starts = [s for s in range(0, max(len(audio), 1), step) if s == 0 or len(audio) - s > MIN_SEGMENT_SAMPLES]
  return [audio[s:s + step + FRAME - HOP] for s in starts]


class AstNetwork(nn.Module):
  """transformers' `ASTForAudioClassification(...).logits`, no dropout."""
  config: AstConfig
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, spec: jax.Array) -> jax.Array:
    """[B, T, M] normalised filterbanks (`features`) -> [B, L] logits."""
    cfg = self.config
    d = cfg.hidden_size
    # Time is the conv's height and mel its width, so that the kernel is torch's [D, 1, mel, time] transposed whole
    # (as `hf_folder.convert` transposes every kernel); torch flattens the patch grid frequency-major, hence the
    # swap before the reshape.
    patches = nn.Conv(d, (cfg.patch_size, cfg.patch_size), (cfg.time_stride, cfg.frequency_stride), 'VALID',
                      precision=self.precision, name='patch_embeddings')(spec[..., None])  # [B, T', F', D]
    x = patches.transpose(0, 2, 1, 3).reshape(spec.shape[0], -1, d)  # [B, P, D]
    tokens = [self.param(name, nn.initializers.zeros, (1, 1, d)) for name in ('cls_token', 'distillation_token')]
    x = jnp.concatenate([jnp.broadcast_to(t, (x.shape[0], 1, d)) for t in tokens] + [x], axis=1)
    x = x + self.param('position_embeddings', nn.initializers.zeros, (1, x.shape[1], d))
    head_dim = d // cfg.num_attention_heads
    norm = functools.partial(nn.LayerNorm, epsilon=cfg.layer_norm_eps, use_fast_variance=False)
    layer = functools.partial(
        EncoderLayer, cfg.num_attention_heads, head_dim, use_bias=True, scale=head_dim ** -0.5,
        mlp_dim=cfg.intermediate_size, act=cfg.hidden_act, gated=False, norm=norm, pre_norm=True,
        precision=self.precision)
    no_mask = jnp.zeros((), jnp.float32)
    for i in range(cfg.num_hidden_layers):
      x = layer(name=f'layer_{i}')(x, no_mask)
    x = norm(name='final_norm')(x)
    pooled = (x[:, 0] + x[:, 1]) / 2
    return nn.Dense(len(cfg.labels), precision=self.precision, name='head')(norm(name='head_norm')(pooled))


def _key_map(config: AstConfig) -> dict[str, hf_folder.ParamPath]:
  """transformers' on-disk key (what save_pretrained writes, in v4 and v5) -> Flax param path."""
  dense, norm = hf_folder.dense_keys, hf_folder.norm_keys
  base = 'audio_spectrogram_transformer'
  keys = {f'{base}.embeddings.{name}': (name,) for name in ('cls_token', 'distillation_token', 'position_embeddings')}
  keys.update(dense(f'{base}.embeddings.patch_embeddings.projection', 'patch_embeddings'))
  for i in range(config.num_hidden_layers):
    keys.update(hf_folder.encoder_layer_keys(f'{base}.encoder.layer.{i}', f'layer_{i}', 'attention',
                                             'layernorm_before', 'layernorm_after'))
  keys.update(norm(f'{base}.layernorm', 'final_norm'))
  keys.update(norm('classifier.layernorm', 'head_norm'))
  keys.update(dense('classifier.dense', 'head'))
  return keys


def load(folder: str | os.PathLike) -> tuple[AstConfig, dict]:
  """(config, params) for `AstNetwork(config)` from a transformers ASTForAudioClassification folder.

  Raises:
    FileNotFoundError: no such folder, or no config.json in it.
    ValueError: not an AST classifier config (CheckpointError: weights missing, truncated or not the config's).
  """
  folder = hf_folder.check_folder(folder, 'AST model')
  config = AstConfig.from_dicts(hf_folder.read_json(folder, 'config.json'),
                                hf_folder.read_json(folder, 'preprocessor_config.json', required=False))
  state = hf_folder.read_weights(folder)
  spec = jnp.zeros((1, config.max_length, config.num_mel_bins), jnp.float32)
  expected = jax.eval_shape(AstNetwork(config).init, jax.random.key(0), spec)['params']
  params = hf_folder.convert(state, _key_map(config), expected, ignore=lambda key: False)
  return config, jax.tree.map(jnp.asarray, params)


class AstClassifier:
  """AST's label distributions per clip, for the KL metric (`metrics.kl_divergence`)."""
  sample_rate = SAMPLE_RATE

  def __init__(self, folder: str, batch_size: int = 8, progress: bool = True):
    """Loads a local transformers ASTForAudioClassification folder (errors: `load`)."""
    self.config, self.params = load(folder)
    self.name = f'ast-{os.path.basename(os.path.normpath(folder))}/1'
    self.labels = self.config.labels
    self.batch_size = batch_size
    self.progress = progress
    self._apply = jax.jit(AstNetwork(self.config).apply)

  def logits(self, spec: np.ndarray) -> np.ndarray:
    """[B, T, M] model inputs (`features`) -> [B, L] float32 logits, in jitted batches of `batch_size` (the last
    padded, so that one shape is compiled)."""
    out = []
    for start in range(0, len(spec), self.batch_size):
      batch = np.asarray(spec[start:start + self.batch_size], np.float32)
      padded = np.pad(batch, ((0, self.batch_size - len(batch)), (0, 0), (0, 0)))
      out.append(np.asarray(self._apply({'params': self.params}, padded))[:len(batch)])
    return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

  def label_probs(self, clips: Sequence[tuple[str, np.ndarray]], desc: str = 'ast') -> np.ndarray:
    """[(name, audio [N] float32 at 16 kHz)] -> [len(clips), L] float64: per clip, the softmax of each segment's
    logits (`segments`) averaged over its segments."""
    cut = [segments(np.asarray(audio, np.float32), self.config.max_length) for _, audio in clips]
    owner = np.repeat(np.arange(len(clips)), [len(s) for s in cut])
    flat = [s for clip in cut for s in clip]
    logits = []
    with tqdm.tqdm(total=len(flat), desc=desc, unit='segment', disable=not self.progress) as bar:
      for start in range(0, len(flat), self.batch_size):
        batch = flat[start:start + self.batch_size]
        logits.append(self.logits(np.stack([features(s, self.config) for s in batch])))
        bar.update(len(batch))
    if not logits:
      return np.zeros((0, len(self.labels)))
    logits = np.concatenate(logits).astype(np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.stack([probs[owner == i].mean(0) for i in range(len(clips))])
