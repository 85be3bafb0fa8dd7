"""Random transformers T5 encoders saved as local folders (weights + a tiny tokenizer), for tests.

No T5 tokenizer is available offline, so a small SentencePiece unigram model is trained on a few captions.
"""
import io
import os

import torch
import transformers

CAPTIONS = ['an upbeat electronic track with synth pads and a punchy kick drum',
            'calm acoustic guitar melody, warm and intimate, 90 bpm',
            'epic orchestral score with strings, brass and thunderous percussion',
            'Jazzy saxophone solo over walking bass; café ambience. Naïve résumé!'] * 10


def write_sentencepiece(folder: str | os.PathLike, vocab_size: int = 64) -> None:
  """Trains a tiny unigram SentencePiece model (T5's special ids: pad 0, eos 1, unk 2) into folder/spiece.model."""
  import sentencepiece as spm
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(sentence_iterator=iter(CAPTIONS), model_writer=model, vocab_size=vocab_size,
                                 model_type='unigram', pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2)
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, 'spiece.model'), 'wb') as f:
    f.write(model.getvalue())


def randomize_norms(model: torch.nn.Module, generator: torch.Generator) -> None:
  """Default LayerNorm init is ones/zeros, which a loader that skipped them would pass."""
  for name, param in model.named_parameters():
    if ('layer_norm' in name or 'LayerNorm' in name) and name.endswith('weight'):
      param.data.uniform_(0.5, 1.5, generator=generator)
    elif 'LayerNorm' in name:
      param.data.normal_(0, 0.1, generator=generator)


def t5_model(feed_forward_proj: str = 'relu', vocab_size: int = 128, d_model: int = 64, full: bool = False,
             seed: int = 0) -> torch.nn.Module:
  """A random small T5 encoder (or full T5ForConditionalGeneration), eval mode."""
  torch.manual_seed(seed)
  config = transformers.T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=16, num_layers=2, num_decoder_layers=1,
                                 num_heads=4, d_ff=2 * d_model, relative_attention_num_buckets=32,
                                 relative_attention_max_distance=20, feed_forward_proj=feed_forward_proj)
  cls = transformers.T5ForConditionalGeneration if full else transformers.T5EncoderModel
  model = cls(config).eval()
  randomize_norms(model, torch.Generator().manual_seed(seed + 1))
  return model


def save_t5_folder(folder: str | os.PathLike, d_model: int = 64, seed: int = 0) -> torch.nn.Module:
  """A random relu T5EncoderModel (t5-base style) with the tiny tokenizer, saved like a hub folder; returns it."""
  folder = os.fspath(folder)
  write_sentencepiece(folder)
  model = t5_model('relu', d_model=d_model, seed=seed)
  model.save_pretrained(folder)
  transformers.T5Tokenizer.from_pretrained(folder).save_pretrained(folder)
  return model
