"""T5 encoder stack (transformers' `T5EncoderModel`), the text encoder of audiocraft's MAGNeT/MusicGen.

Pre-norm blocks with RMS-style T5 LayerNorm (no mean, no bias), self-attention without logits scaling and with a
bucketed relative position bias computed by the first block and shared by all, a ReLU (t5-base/large) or gated-GELU
(v1.1/flan) feed-forward, and a final LayerNorm. audiocraft's `output_proj` belongs to the LM, not here.

Shapes: B batch, S text tokens, D `d_model`, N heads, V vocabulary.
"""
import dataclasses
import functools
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.text import hf_folder
from magnet_jax.text.layers import HIGHEST, EncoderLayer, activation, attention_bias


@dataclasses.dataclass(frozen=True)
class T5Config:
  """Hyperparameters of a T5 encoder (field names of transformers' T5Config; defaults are its defaults)."""
  vocab_size: int = 32128
  d_model: int = 512  # D
  d_kv: int = 64  # head dim
  d_ff: int = 2048  # feed-forward hidden dim
  num_layers: int = 6
  num_heads: int = 8  # N
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  layer_norm_epsilon: float = 1e-6
  feed_forward_proj: str = 'relu'  # 'relu' (t5-base), 'gated-gelu' (v1.1, flan), '[gated-]ACT' in general

  def __post_init__(self):
    activation(self.dense_act_fn)

  @property
  def is_gated_act(self) -> bool:
    return self.feed_forward_proj.startswith('gated-')

  @property
  def dense_act_fn(self) -> str:
    # transformers maps 'gated-gelu' to the tanh approximation for backwards compatibility.
    return 'gelu_new' if self.feed_forward_proj == 'gated-gelu' else self.feed_forward_proj.split('-')[-1]

  @classmethod
  def from_dict(cls, config: dict) -> 'T5Config':
    """Reads a transformers config.json dict (model_type 't5' or 'mt5'); unrelated keys are ignored."""
    if config.get('model_type', 't5') not in ('t5', 'mt5'):
      raise ValueError(f"not a T5 config: model_type {config.get('model_type')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in config.items() if k in names})


def relative_position_buckets(length: int, num_buckets: int, max_distance: int) -> np.ndarray:
  """Bidirectional T5 bucket of each (query, key) offset, bit-identical to transformers (float32 log).

  Returns:
    [S, S] int32, entry (i, j) the bucket of offset j - i.
  """
  position = np.arange(length)
  relative = position[None, :] - position[:, None]
  half = num_buckets // 2
  max_exact = half // 2
  distance = np.abs(relative)
  log_ratio = np.log(np.maximum(distance, 1).astype(np.float32) / np.float32(max_exact))
  large = max_exact + (log_ratio / np.float32(math.log(max_distance / max_exact))
                       * np.float32(half - max_exact)).astype(np.int64)
  buckets = (relative > 0) * half + np.where(distance < max_exact, distance, np.minimum(large, half - 1))
  return buckets.astype(np.int32)


class T5Encoder(nn.Module):
  """transformers' `T5EncoderModel(...).last_hidden_state`, in inference mode (no dropout)."""
  config: T5Config
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, input_ids: jax.Array, mask: jax.Array) -> jax.Array:
    """input_ids [B, S] int, mask [B, S] bool (True: a real token; an all-False row attends uniformly, see
    `attention_bias`) -> last hidden states [B, S, D] float32, padded positions included as transformers returns
    them."""
    cfg = self.config
    length = input_ids.shape[1]
    x = nn.Embed(cfg.vocab_size, cfg.d_model, name='shared')(input_ids)
    buckets = relative_position_buckets(length, cfg.relative_attention_num_buckets,
                                        cfg.relative_attention_max_distance)
    position_bias = nn.Embed(cfg.relative_attention_num_buckets, cfg.num_heads,
                             name='relative_attention_bias')(buckets)  # [S, S, N]
    bias = attention_bias(mask, jnp.transpose(position_bias, (2, 0, 1))[None])
    layer = functools.partial(
        EncoderLayer, cfg.num_heads, cfg.d_kv, use_bias=False, scale=1.0, mlp_dim=cfg.d_ff, act=cfg.dense_act_fn,
        gated=cfg.is_gated_act, pre_norm=True, precision=self.precision,
        norm=functools.partial(nn.RMSNorm, epsilon=cfg.layer_norm_epsilon))
    for i in range(cfg.num_layers):
      x = layer(name=f'block_{i}')(x, bias)
    return nn.RMSNorm(epsilon=cfg.layer_norm_epsilon, name='final_layer_norm')(x)


def _key_map(config: T5Config) -> dict[str, hf_folder.ParamPath]:
  """PyTorch (transformers) key -> Flax param path."""
  keys = {
      'shared.weight': ('shared', 'embedding'),
      'encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight': ('relative_attention_bias', 'embedding'),
      'encoder.final_layer_norm.weight': ('final_layer_norm', 'scale'),
  }
  ffn = ('wi_0', 'wi_1', 'wo') if config.is_gated_act else ('wi', 'wo')
  for i in range(config.num_layers):
    prefix, block = f'encoder.block.{i}.layer', f'block_{i}'
    keys[f'{prefix}.0.layer_norm.weight'] = (block, 'attn_norm', 'scale')
    keys[f'{prefix}.1.layer_norm.weight'] = (block, 'ffn_norm', 'scale')
    for name in ('q', 'k', 'v', 'o'):
      keys[f'{prefix}.0.SelfAttention.{name}.weight'] = (block, 'attn', name, 'kernel')
    for name in ffn:
      keys[f'{prefix}.1.DenseReluDense.{name}.weight'] = (block, 'ffn', name, 'kernel')
  return keys


def _is_not_encoder(key: str) -> bool:
  """Keys of a full T5 checkpoint that the encoder does not use."""
  return key.startswith(('decoder.', 'lm_head.'))


def load_t5(folder: str | os.PathLike) -> tuple[T5Config, dict]:
  """(config, params) for `T5Encoder(config)` from the encoder of a transformers T5EncoderModel or
  T5ForConditionalGeneration folder. Errors: `hf_folder.load_encoder`."""
  return hf_folder.load_encoder(folder, T5Config.from_dict, T5Encoder, _key_map, _is_not_encoder, _tie_embeddings)


def _tie_embeddings(state: dict) -> dict:
  """`encoder.embed_tokens` is tied to `shared`; save_pretrained usually keeps only one of the two."""
  embed = state.pop('encoder.embed_tokens.weight', None)
  if embed is not None:
    state.setdefault('shared.weight', embed)
  return state
