"""EnCodec (SEANet + residual vector quantizer) in Flax: MAGNeT's audio tokenizer.

audio [B, C, N] float <-> codes [B, K, T] int32, T = ceil(N / hop_length). Load released weights with
`load_transformers` (facebook/encodec_32khz folders) or `load_audiocraft` (`compression_state_dict.bin`); the
project's own codecs (`python -m magnet_jax.apps.codec_train`, the embedded one in `EMBEDDED_CODEC_DIR`) with
`load_codec`.

  config.py     CodecConfig: SEANet and quantizer hyperparameters
  model.py      EncodecModel and its pure entry points (init, encode, decode)
  seanet.py     the SEANet encoder and decoder
  conv.py       audiocraft's streamable (transposed) convolutions' padding, channels-last
  lstm.py       audiocraft's StreamableLSTM
  quantizer.py  the residual vector quantizer
  codebook.py   learning the codebooks without gradients: k-means init, EMA updates, dead-code replacement
  losses.py     waveform L1, multi-scale mel, RVQ commitment
  convert.py    released EnCodec checkpoints -> params
  io.py         a trained codec as a folder (codec.json + codec.safetensors)
"""
from magnet_jax.codec.config import CodecConfig
from magnet_jax.codec.convert import load_audiocraft, load_transformers
from magnet_jax.codec.io import EMBEDDED_CODEC_DIR, load_codec, save_codec
from magnet_jax.codec.model import CodecOutput, EncodecModel, Params, decode, encode, init

__all__ = ['EMBEDDED_CODEC_DIR', 'CodecConfig', 'CodecOutput', 'EncodecModel', 'Params', 'decode', 'encode', 'init',
           'load_audiocraft', 'load_codec', 'load_transformers', 'save_codec']
