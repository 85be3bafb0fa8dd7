"""SEANet encoder and decoder (audiocraft/modules/seanet.py), channels-last.

Each network is described as a layer plan mirroring audiocraft's `nn.Sequential`: the layer at position i is
named `{kind}_{i}` (e.g. `conv_0`, `resblock_1`, `lstm_13`, `convtr_3`), activations taking a position too,
so parameter names map one-to-one onto audiocraft (`encoder.model.{i}`) and transformers
(`encoder.layers.{i}`) checkpoints.
"""
import functools

import jax
from flax import linen as nn

from magnet_jax.codec.config import CodecConfig
from magnet_jax.codec.conv import Conv1d, ConvTranspose1d
from magnet_jax.codec.lstm import LSTM

Layer = tuple[str, dict]  # (kind, keyword arguments): kind in conv, convtr, resblock, lstm, elu


def _resblocks(config: CodecConfig) -> list[Layer]:
  return [('resblock', {'dilation': config.dilation_base**j}) for j in range(config.n_residual_layers)]


def encoder_layers(config: CodecConfig) -> list[Layer]:
  """audiocraft SEANetEncoder.model: conv, [resblocks, elu, strided conv] per reversed ratio, lstm, elu, conv."""
  width = config.n_filters
  layers = [('conv', {'features': width, 'kernel_size': config.kernel_size})]
  for ratio in reversed(config.ratios):
    layers += _resblocks(config)
    layers += [('elu', {}), ('conv', {'features': 2 * width, 'kernel_size': 2 * ratio, 'stride': ratio})]
    width *= 2
  if config.lstm:
    layers.append(('lstm', {}))
  return layers + [('elu', {}), ('conv', {'features': config.dimension, 'kernel_size': config.last_kernel_size})]


def decoder_layers(config: CodecConfig) -> list[Layer]:
  """audiocraft SEANetDecoder.model: conv, lstm, [elu, transposed conv, resblocks] per ratio, elu, conv."""
  width = config.n_filters * 2 ** len(config.ratios)
  layers = [('conv', {'features': width, 'kernel_size': config.kernel_size})]
  if config.lstm:
    layers.append(('lstm', {}))
  for ratio in config.ratios:
    layers += [('elu', {}), ('convtr', {'features': width // 2, 'kernel_size': 2 * ratio, 'stride': ratio})]
    layers += _resblocks(config)
    width //= 2
  return layers + [('elu', {}), ('conv', {'features': config.channels, 'kernel_size': config.last_kernel_size})]


class ResnetBlock(nn.Module):
  """SEANetResnetBlock: x [B, L, W] -> shortcut(x) + conv_1x1(elu(conv_k(elu(x)))) [B, L, W], hidden W // compress.

  Submodules are named after audiocraft's `block.{1,3}` / `shortcut` positions.
  """
  config: CodecConfig
  dilation: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    conv = functools.partial(Conv1d, causal=cfg.causal, pad_mode=cfg.pad_mode)
    dim = x.shape[-1]
    y = nn.elu(x, cfg.elu_alpha)
    y = conv(dim // cfg.compress, cfg.residual_kernel_size, dilation=self.dilation, name='block_1')(y)
    y = nn.elu(y, cfg.elu_alpha)
    y = conv(dim, 1, name='block_3')(y)
    shortcut = x if cfg.true_skip else conv(dim, 1, name='shortcut')(x)
    return shortcut + y


def _run(config: CodecConfig, layers: list[Layer], x: jax.Array) -> jax.Array:
  """Applies a layer plan inside the calling module's compact scope."""
  for index, (kind, kwargs) in enumerate(layers):
    name = f'{kind}_{index}'
    if kind == 'elu':
      x = nn.elu(x, config.elu_alpha)
    elif kind == 'conv':
      x = Conv1d(**kwargs, causal=config.causal, pad_mode=config.pad_mode, name=name)(x)
    elif kind == 'convtr':
      x = ConvTranspose1d(**kwargs, causal=config.causal, trim_right_ratio=config.trim_right_ratio, name=name)(x)
    elif kind == 'resblock':
      x = ResnetBlock(config, **kwargs, name=name)(x)
    else:
      x = LSTM(config.lstm, name=name)(x)
  return x


class SEANetEncoder(nn.Module):
  """Audio [B, N, C] -> latent [B, T, D] with T = ceil(N / hop_length)."""
  config: CodecConfig

  @nn.compact
  def __call__(self, audio: jax.Array) -> jax.Array:
    return _run(self.config, encoder_layers(self.config), audio)


class SEANetDecoder(nn.Module):
  """Latent [B, T, D] -> audio [B, T * hop_length, C]."""
  config: CodecConfig

  @nn.compact
  def __call__(self, latent: jax.Array) -> jax.Array:
    return _run(self.config, decoder_layers(self.config), latent)
