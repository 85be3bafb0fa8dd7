"""Text encoders for conditioning: T5 (audiocraft's MAGNeT) and BERT/MiniLM, with torch-free loaders.

  encoder.py    TextEncoder: prompts -> (states, mask), the interface the pipeline uses
  t5.py         the T5 encoder stack (transformers' T5EncoderModel)
  bert.py       the BERT encoder (e.g. all-MiniLM-L6-v2) with mean pooling
  layers.py     masked multi-head attention and the feed-forward both encoders share
  tokenizer.py  tokenization with the `tokenizers` library, set up as transformers sets it up
  hf_folder.py  transformers model folders (config.json + weights) -> Flax parameter trees
"""
from magnet_jax.text.bert import BertConfig, BertEncoder, load_bert, mean_pool
from magnet_jax.text.encoder import TextEncoder, minilm_folder
from magnet_jax.text.t5 import T5Config, T5Encoder, load_t5
from magnet_jax.text.tokenizer import Tokenizer

__all__ = [
    'BertConfig', 'BertEncoder', 'T5Config', 'T5Encoder', 'TextEncoder', 'Tokenizer', 'load_bert', 'load_t5',
    'mean_pool', 'minilm_folder',
]
