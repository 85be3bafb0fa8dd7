"""Text encoders for conditioning: T5 (audiocraft's MAGNeT) and BERT/MiniLM, with torch-free loaders."""
from magnet_jax.text.bert import BertConfig, BertEncoder, load_bert, mean_pool
from magnet_jax.text.encoder import TextEncoder, minilm_folder
from magnet_jax.text.t5 import T5Config, T5Encoder, load_t5
from magnet_jax.text.tokenizer import Tokenizer

__all__ = [
    'BertConfig', 'BertEncoder', 'T5Config', 'T5Encoder', 'TextEncoder', 'Tokenizer', 'load_bert', 'load_t5',
    'mean_pool', 'minilm_folder',
]
