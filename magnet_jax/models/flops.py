"""Analytic counts of the LM: parameters, and FLOPs (2 per multiply-add) of a forward, a training step and a
masked decode. The speed benchmark's MFU and the ahead-of-time plans (`training/aot.py`) divide by these."""
from magnet_jax.models.config import MagnetConfig


def forward_flops(model: MagnetConfig, rows: int, length: int, text: int, *, keys: float, heads: int) -> float:
  """Analytic FLOPs of one LM forward over `rows` sequences of `length` frames.

  Args:
    model: the LM.
    rows: sequences in the batch (2B with CFG).
    length: T.
    text: S, text states attended by cross-attention (their K/V and the conditioner projection included).
    keys: keys per query in self-attention (T for full attention, 2 * subcodes_context + 1 restricted).
    heads: output heads computed (audiocraft computes all K, magnet-jax only the sampled level's).
  """
  d, f = model.dim, model.mlp_dim
  tokens = rows * length
  layer = tokens * (2 * 4 * d * d + 2 * 2 * d * f + 2 * 2 * d * d)  # self q/k/v/out, MLP, cross q/out
  layer += rows * text * 2 * 2 * d * d                              # cross k/v of the text
  layer += tokens * 2 * 2 * keys * d + tokens * 2 * 2 * text * d     # self and cross scores and values
  return model.num_layers * layer + rows * text * 2 * model.text_dim * d + tokens * 2 * d * model.card * heads


def mfu_flops_per_step(model: MagnetConfig, batch: int, length: int, text: int) -> float:
  """Model FLOPs of one training step: forward + backward (3x forward), one level head, the level drawn uniformly
  (level 0 attends to T keys, levels > 0 to 2 * subcodes_context + 1). Rematerialisation's extra forward is not
  model FLOPs (MFU counts it as overhead)."""
  local = 2 * model.subcodes_context + 1
  keys = (length + (model.n_q - 1) * local) / model.n_q
  return 3 * forward_flops(model, batch, length, text, keys=keys, heads=1)


def decode_flops(model: MagnetConfig, decoding_steps, rows: int, length: int, text: int, *,
                 full_attention: bool = False, heads: int = 1) -> float:
  """FLOPs of one masked decode: `decoding_steps[level]` forwards of `rows` sequences (2B with CFG) per level.
  magnet-jax restricts levels > 0 to 2 * subcodes_context + 1 keys and computes one head; audiocraft
  (`full_attention`, `heads=K`) computes full attention and every head."""
  local = 2 * model.subcodes_context + 1
  total = 0.0
  for level, steps in enumerate(decoding_steps):
    keys = length if full_attention or level == 0 else local
    total += steps * forward_flops(model, rows, length, text, keys=keys, heads=heads)
  return total


def params_millions(model: MagnetConfig) -> float:
  """MagnetLM parameter count (what `count_params` reports), in millions."""
  d, f = model.dim, model.mlp_dim
  layer = 2 * 4 * d * d + 2 * d * f + 6 * d
  total = model.n_q * (model.card + 1) * d + model.text_dim * d + d + model.num_layers * layer + 2 * d
  return (total + model.n_q * d * model.card) / 1e6
