"""EnCodec (SEANet + residual vector quantizer) in Flax: MAGNeT's audio tokenizer.

audio [B, C, N] float <-> codes [B, K, T] int32, T = ceil(N / hop_length). Load released weights with
`load_transformers` (facebook/encodec_32khz folders) or `load_audiocraft` (`compression_state_dict.bin`).
"""
from magnet_jax.codec.config import CodecConfig
from magnet_jax.codec.convert import load_audiocraft, load_transformers
from magnet_jax.codec.model import CodecOutput, EncodecModel, Params, decode, encode, init

__all__ = ['CodecConfig', 'CodecOutput', 'EncodecModel', 'Params', 'decode', 'encode', 'init', 'load_audiocraft',
           'load_transformers']
