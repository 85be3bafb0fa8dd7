"""EnCodec's continuous embeddings (fadtk's `encodec-emb`): the SEANet encoder's output before quantisation, one
[D] row per latent frame. fadtk uses Meta's 24 kHz EnCodec (D = 128, 75 frames a second); here any EnCodec the
project reads: the embedded default's codec (shipped; 16 kHz, D = 64, 50 frames a second) unless --encodec_folder
names a magnet-jax codec folder (codec.json) or a transformers EncodecModel folder (config.json, e.g. a local copy of
facebook/encodec_24khz, fadtk's model)."""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from magnet_jax.codec import EMBEDDED_CODEC_DIR, CodecConfig, EncodecModel, convert
from magnet_jax.codec.io import CONFIG_FILE, load_codec
from magnet_jax.evaluation.registry import Clips, ModelSpec, Option

DEFAULT_FOLDER = EMBEDDED_CODEC_DIR


@functools.partial(jax.jit, static_argnames='config')
def latent(params, audio: jax.Array, config: CodecConfig) -> jax.Array:
  """audio [B, C, N] -> the encoder's output [B, T, D] (before the quantizer)."""
  return EncodecModel(config).apply({'params': params}, audio.astype(jnp.float32),
                                    method=lambda model, x: model.encoder(x.transpose(0, 2, 1)))


def _name(folder: str | None) -> str:
  return f'encodec-{os.path.basename(os.path.normpath(folder)) if folder else "default"}/1'


class EncodecEmbedder:
  """Embedder at the codec's sample rate: a clip is encoded whole (mono copied to every channel of the codec)."""

  def __init__(self, folder: str | None = None, batch_size: int = 32, progress: bool = True):
    self.name = _name(folder)
    folder = folder or DEFAULT_FOLDER
    is_ours = os.path.isfile(os.path.join(folder, CONFIG_FILE))
    self.config, self.params = load_codec(folder) if is_ours else convert.load_transformers(folder)
    self.sample_rate = self.config.sample_rate
    self.progress = progress

  def embed(self, clips: Clips, desc: str = 'encodec') -> list[np.ndarray]:
    out = []
    for _, audio in tqdm.tqdm(clips, desc=desc, unit='clip', disable=not self.progress):
      batch = np.broadcast_to(np.asarray(audio, np.float32), (1, self.config.channels, len(audio)))
      out.append(np.asarray(latent(self.params, batch, self.config))[0])
    return out


MODEL = ModelSpec(
    name='encodec', roles=('embedder',), load=EncodecEmbedder,
    summary='EnCodec encoder output before quantisation, fadtk\'s encodec-emb (default: the embedded codec)',
    option=Option('encodec_folder', 'folder', 'EnCodec for --embedder encodec: a magnet-jax codec folder or a '
                  'transformers EncodecModel folder (default: the embedded default\'s codec).', required=False),
    stats_name=_name)
