"""Text tokenization without transformers: the `tokenizers` library set up as transformers 5 sets it up.

transformers 5 rebuilds a folder's tokenizer in the tokenizer class's `__init__` rather than taking tokenizer.json
verbatim; this module does the same for the classes we use, so ids match `T5Tokenizer` / `BertTokenizer` /
`RobertaTokenizer` called as `tok(texts, padding=True)` (T5, as audiocraft's T5Conditioner calls it) or
`tok(texts, padding=True, truncation=True, max_length=L)` (BERT, RoBERTa):
- T5: Unigram vocab from tokenizer.json or spiece.model (+ 100 `<extra_id_*>` sentinels, the last id first), the
  SentencePiece precompiled normalizer, whitespace split + metaspace, and `</s>` appended. No truncation.
- BERT: WordPiece vocab from tokenizer.json or vocab.txt, lower-casing / accent stripping from
  tokenizer_config.json, `[CLS] ... [SEP]`, truncation to `max_length` (default: sentence-transformers'
  `max_seq_length`, else `model_max_length`).
- RoBERTa (CLAP's text branch): byte-level BPE from tokenizer.json or vocab.json + merges.txt, `<s> ... </s>`,
  truncation to `max_length` (default `model_max_length`).
"""
import base64
import os
from collections.abc import Sequence

import numpy as np
import tokenizers
from absl import logging
from tokenizers import AddedToken, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE, Unigram, WordPiece

from magnet_jax.text import hf_folder


def _find_precompiled(normalizer: dict | None) -> bytes | None:
  """The SentencePiece charsmap of a tokenizer.json normalizer (possibly inside a Sequence)."""
  if not normalizer:
    return None
  for item in normalizer.get('normalizers', [normalizer]):
    if item.get('type') == 'Precompiled' and item.get('precompiled_charsmap'):
      return base64.b64decode(item['precompiled_charsmap'])
  return None


def _token(config: dict, key: str, default: str) -> str:
  """A special token of tokenizer_config.json, stored as a string or (older files) as an AddedToken dict."""
  token = config.get(key) or default
  return token['content'] if isinstance(token, dict) else token


def _t5_backend(folder: str, config: dict) -> tokenizers.Tokenizer:
  """transformers' T5Tokenizer pipeline."""
  json_path = os.path.join(folder, 'tokenizer.json')
  special = [_token(config, 'pad_token', '<pad>'), _token(config, 'eos_token', '</s>'),
             _token(config, 'unk_token', '<unk>')]
  extra = [f'<extra_id_{i}>' for i in reversed(range(config.get('extra_ids', 100)))]
  if os.path.isfile(json_path):
    data = hf_folder.read_json(folder, 'tokenizer.json')
    vocab = [tuple(item) for item in data['model']['vocab']]
    charsmap = _find_precompiled(data.get('normalizer'))
  elif os.path.isfile(os.path.join(folder, 'spiece.model')):
    from sentencepiece import sentencepiece_model_pb2  # only for folders without tokenizer.json

    proto = sentencepiece_model_pb2.ModelProto()
    with open(os.path.join(folder, 'spiece.model'), 'rb') as f:
      proto.ParseFromString(f.read())
    vocab = [(piece.piece, piece.score) for piece in proto.pieces] + [(token, 0.0) for token in extra]
    charsmap = proto.normalizer_spec.precompiled_charsmap or None
  else:
    raise FileNotFoundError(f'no tokenizer.json or spiece.model in {folder}')
  backend = tokenizers.Tokenizer(Unigram(vocab, unk_id=2, byte_fallback=False))
  if charsmap is not None:
    backend.normalizer = normalizers.Precompiled(charsmap)
  backend.pre_tokenizer = pre_tokenizers.Sequence([
      pre_tokenizers.WhitespaceSplit(),
      pre_tokenizers.Metaspace(replacement='▁', prepend_scheme='always', split=True),
  ])
  backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special + extra[::-1]])
  eos = special[1]
  backend.post_processor = processors.TemplateProcessing(
      single=['$A', eos], special_tokens=[(eos, backend.token_to_id(eos))])
  return backend


def _bert_backend(folder: str, config: dict) -> tokenizers.Tokenizer:
  """transformers' BertTokenizer pipeline."""
  defaults = {'pad_token': '[PAD]', 'unk_token': '[UNK]', 'cls_token': '[CLS]', 'sep_token': '[SEP]',
              'mask_token': '[MASK]'}
  pad, unk, cls, sep, mask = (_token(config, key, default) for key, default in defaults.items())
  if os.path.isfile(os.path.join(folder, 'tokenizer.json')):
    backend = tokenizers.Tokenizer.from_file(os.path.join(folder, 'tokenizer.json'))
  elif os.path.isfile(os.path.join(folder, 'vocab.txt')):
    backend = tokenizers.Tokenizer(WordPiece.from_file(os.path.join(folder, 'vocab.txt'), unk_token=unk))
  else:
    raise FileNotFoundError(f'no tokenizer.json or vocab.txt in {folder}')
  backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (pad, unk, cls, sep, mask)])
  backend.normalizer = normalizers.BertNormalizer(
      clean_text=True, handle_chinese_chars=config.get('tokenize_chinese_chars', True),
      strip_accents=config.get('strip_accents'), lowercase=config.get('do_lower_case', True))
  backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  backend.post_processor = processors.TemplateProcessing(
      single=f'{cls}:0 $A:0 {sep}:0', special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))])
  return backend


def _roberta_backend(folder: str, config: dict) -> tokenizers.Tokenizer:
  """transformers' RobertaTokenizer pipeline."""
  defaults = {'bos_token': '<s>', 'eos_token': '</s>', 'unk_token': '<unk>', 'pad_token': '<pad>',
              'mask_token': '<mask>'}
  bos, eos, unk, pad, mask = (_token(config, key, default) for key, default in defaults.items())
  cls, sep = _token(config, 'cls_token', bos), _token(config, 'sep_token', eos)
  if os.path.isfile(os.path.join(folder, 'tokenizer.json')):
    model = hf_folder.read_json(folder, 'tokenizer.json')['model']
    vocab = model['vocab']
    merges = [tuple(m.split(' ')) if isinstance(m, str) else tuple(m) for m in model['merges']]
  elif all(os.path.isfile(os.path.join(folder, name)) for name in ('vocab.json', 'merges.txt')):
    vocab, merges = BPE.read_file(os.path.join(folder, 'vocab.json'), os.path.join(folder, 'merges.txt'))
  else:
    raise FileNotFoundError(f'no tokenizer.json or vocab.json + merges.txt in {folder}')
  add_prefix_space = config.get('add_prefix_space', False)
  backend = tokenizers.Tokenizer(BPE(vocab, merges, dropout=None, continuing_subword_prefix='', end_of_word_suffix='',
                                     fuse_unk=False))
  backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
  special = dict.fromkeys((bos, eos, unk, sep, pad, cls, mask))
  backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
  backend.post_processor = processors.RobertaProcessing(
      (sep, backend.token_to_id(sep)), (cls, backend.token_to_id(cls)), trim_offsets=config.get('trim_offsets', True),
      add_prefix_space=add_prefix_space)
  return backend


def _kind(folder: str, config: dict) -> str:
  """'t5', 'bert' or 'roberta', from tokenizer_config.json's class or config.json's model type."""
  name = config.get('tokenizer_class') or hf_folder.read_json(folder, 'config.json', required=False).get(
      'model_type', '')
  name = name.lower()
  if name.startswith('t5') or os.path.isfile(os.path.join(folder, 'spiece.model')):
    return 't5'
  if name.startswith('bert'):
    return 'bert'
  if name.startswith('roberta'):
    return 'roberta'
  raise ValueError(f'{folder}: cannot tell the tokenizer kind ({name!r}); expected a T5, BERT or RoBERTa tokenizer')


def _default_max_length(folder: str, config: dict) -> int | None:
  length = hf_folder.read_json(folder, 'sentence_bert_config.json', required=False).get('max_seq_length')
  if length is None:
    length = config.get('model_max_length')
  return int(length) if length is not None and length < 1e6 else None  # transformers' "unset" is ~1e30


class Tokenizer:
  """Batch tokenizer: texts -> padded ids and attention mask.

  Attributes:
    kind: 't5', 'bert' or 'roberta'.
    pad_id: id used for padding.
    max_length: truncation length including special tokens, or None for no truncation.
  """

  def __init__(self, backend: tokenizers.Tokenizer, kind: str, pad_id: int, max_length: int | None):
    self.kind, self.pad_id, self.max_length = kind, pad_id, max_length
    self._backend = backend
    backend.no_padding()
    if max_length is None:
      backend.no_truncation()
    else:
      backend.enable_truncation(max_length)

  @classmethod
  def from_folder(cls, folder: str | os.PathLike, kind: str | None = None,
                  max_length: int | None = None) -> 'Tokenizer':
    """Reads a transformers tokenizer folder.

    Args:
      folder: holds tokenizer.json, or spiece.model (T5) / vocab.txt (BERT) / vocab.json + merges.txt (RoBERTa),
        and usually tokenizer_config.json.
      kind: 't5', 'bert' or 'roberta'; detected from the folder's files when None.
      max_length: BERT / RoBERTa truncation length; None takes the folder's (T5 is never truncated, as in
        audiocraft).

    Raises:
      FileNotFoundError: the folder or its vocabulary file is missing.
    """
    folder = hf_folder.check_folder(folder)
    config = hf_folder.read_json(folder, 'tokenizer_config.json', required=False)
    kind = kind or _kind(folder, config)
    if kind == 't5':
      backend = _t5_backend(folder, config)
    elif kind == 'bert':
      backend = _bert_backend(folder, config)
      max_length = max_length or _default_max_length(folder, config)
    elif kind == 'roberta':
      backend = _roberta_backend(folder, config)
      max_length = max_length or _default_max_length(folder, config)
    else:
      raise ValueError(f"unknown tokenizer kind {kind!r}; expected 't5', 'bert' or 'roberta'")
    pad = _token(config, 'pad_token', '[PAD]' if kind == 'bert' else '<pad>')
    return cls(backend, kind, backend.token_to_id(pad), max_length)

  def __call__(self, texts: Sequence[str], pad_to: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Tokenizes a batch, padding on the right to the longest sequence.

    Args:
      texts: B strings (may be empty).
      pad_to: round the padded length S up to a multiple of this.

    Returns:
      (input_ids [B, S] int32, mask [B, S] bool).
    """
    encodings = self._backend.encode_batch(list(texts))
    for text, encoding in zip(texts, encodings, strict=True):
      if encoding.overflowing:
        logging.warning('text %r is longer than the text encoder\'s limit of %d tokens: only its first %d tokens '
                        'are encoded', text if len(text) <= 80 else text[:77] + '...', self.max_length,
                        self.max_length)
    longest = max(len(e.ids) for e in encodings)
    length = -(-longest // pad_to) * pad_to
    ids = np.full((len(encodings), length), self.pad_id, np.int32)
    mask = np.zeros((len(encodings), length), bool)
    for row, encoding in enumerate(encodings):
      ids[row, :len(encoding.ids)] = encoding.ids
      mask[row, :len(encoding.ids)] = True
    return ids, mask
