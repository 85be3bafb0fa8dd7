"""BERT encoder (transformers' `BertModel`), e.g. all-MiniLM-L6-v2 (6 layers, D 384), with mean pooling.

Post-norm blocks: x = LN(x + SelfAttention(x)), x = LN(x + FF(x)), on word + absolute position + token type
embeddings followed by a LayerNorm. The pooler head is not used.

Shapes: B batch, S text tokens, D `hidden_size`, N heads.
"""
import dataclasses
import functools
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp

from magnet_jax.text import hf_folder
from magnet_jax.text.layers import HIGHEST, EncoderLayer, activation, attention_bias


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """Hyperparameters of a BERT encoder (field names and defaults of transformers' BertConfig)."""
  vocab_size: int = 30522
  hidden_size: int = 768  # D
  num_hidden_layers: int = 12
  num_attention_heads: int = 12  # N
  intermediate_size: int = 3072  # feed-forward hidden dim
  hidden_act: str = 'gelu'  # exact (erf) GELU
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  position_embedding_type: str = 'absolute'  # the only one supported

  def __post_init__(self):
    activation(self.hidden_act)
    if self.position_embedding_type != 'absolute':
      raise ValueError(f'unsupported position_embedding_type {self.position_embedding_type!r}')
    if self.hidden_size % self.num_attention_heads:
      raise ValueError(f'hidden_size {self.hidden_size} is not a multiple of {self.num_attention_heads} heads')

  @classmethod
  def from_dict(cls, config: dict) -> 'BertConfig':
    """Reads a transformers config.json dict (model_type 'bert'); unrelated keys are ignored."""
    if config.get('model_type', 'bert') != 'bert':
      raise ValueError(f"not a BERT config: model_type {config.get('model_type')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in config.items() if k in names})


class BertEncoder(nn.Module):
  """transformers' `BertModel(...).last_hidden_state` for single-segment input (token type 0), no dropout."""
  config: BertConfig
  precision: jax.lax.PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, input_ids: jax.Array, mask: jax.Array, position_ids: jax.Array | None = None) -> jax.Array:
    """input_ids [B, S] int (S <= max_position_embeddings), mask [B, S] bool (True: a real token), position_ids
    [B, S] int (default 0..S-1; RoBERTa's start at pad_token_id + 1) -> last hidden states [B, S, D] float32."""
    cfg = self.config
    length = input_ids.shape[1]
    if length > cfg.max_position_embeddings:
      raise ValueError(f'{length} tokens exceed max_position_embeddings {cfg.max_position_embeddings}')
    x = nn.Embed(cfg.vocab_size, cfg.hidden_size, name='word_embeddings')(input_ids)
    x = x + nn.Embed(cfg.type_vocab_size, cfg.hidden_size, name='token_type_embeddings')(jnp.zeros_like(input_ids))
    positions = jnp.arange(length) if position_ids is None else position_ids
    x = x + nn.Embed(cfg.max_position_embeddings, cfg.hidden_size, name='position_embeddings')(positions)
    x = nn.LayerNorm(epsilon=cfg.layer_norm_eps, use_fast_variance=False, name='embeddings_norm')(x)
    bias = attention_bias(mask)
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    layer = functools.partial(
        EncoderLayer, cfg.num_attention_heads, head_dim, use_bias=True, scale=1 / math.sqrt(head_dim),
        mlp_dim=cfg.intermediate_size, act=cfg.hidden_act, gated=False, pre_norm=False, precision=self.precision,
        norm=functools.partial(nn.LayerNorm, epsilon=cfg.layer_norm_eps, use_fast_variance=False))
    for i in range(cfg.num_hidden_layers):
      x = layer(name=f'layer_{i}')(x, bias)
    return x


def mean_pool(states: jax.Array, mask: jax.Array) -> jax.Array:
  """sentence-transformers' mean pooling: the average of the states of real tokens.

  Args:
    states: [B, S, D].
    mask: [B, S] bool.

  Returns:
    [B, D]; a row without real tokens gives zeros.
  """
  weights = mask.astype(states.dtype)[..., None]
  return (states * weights).sum(axis=1) / jnp.maximum(weights.sum(axis=1), 1e-9)


def key_map(config: BertConfig) -> dict[str, hf_folder.ParamPath]:
  """PyTorch (transformers) key, without any 'bert.' prefix -> Flax param path."""
  norm = hf_folder.norm_keys
  keys = {
      'embeddings.word_embeddings.weight': ('word_embeddings', 'embedding'),
      'embeddings.token_type_embeddings.weight': ('token_type_embeddings', 'embedding'),
      'embeddings.position_embeddings.weight': ('position_embeddings', 'embedding'),
      **norm('embeddings.LayerNorm', 'embeddings_norm'),
  }
  for i in range(config.num_hidden_layers):
    keys.update(hf_folder.encoder_layer_keys(f'encoder.layer.{i}', f'layer_{i}', 'self', 'attention.output.LayerNorm',
                                             'output.LayerNorm'))
  return keys


def _is_unused(key: str) -> bool:
  """Buffers and heads that the encoder does not use."""
  return key in ('embeddings.position_ids', 'embeddings.token_type_ids') or key.startswith(('pooler.', 'cls.'))


def _normalize_key(key: str) -> str:
  """Strips a task model's 'bert.' prefix and renames old LayerNorm gamma/beta."""
  key = key.removeprefix('bert.')
  return key.replace('LayerNorm.gamma', 'LayerNorm.weight').replace('LayerNorm.beta', 'LayerNorm.bias')


def load_bert(folder: str | os.PathLike) -> tuple[BertConfig, dict]:
  """(config, params) for `BertEncoder(config)` from a transformers BertModel folder, or a task model's 'bert.'
  encoder (config.json; model.safetensors, sharded or not, or pytorch_model.bin). Errors: `hf_folder.load_encoder`."""
  return hf_folder.load_encoder(folder, BertConfig.from_dict, BertEncoder, key_map, _is_unused,
                                lambda state: {_normalize_key(k): v for k, v in state.items()})
