"""magnet-jax: MAGNeT (Ziv et al., ICLR 2024) in JAX/Flax.

The public API, importable from here (each name lives in one module of the package):

  load(folder=None, **kwargs) -> MagnetPipeline   a released or exported folder; None: the embedded default
  MagnetPipeline                                   generate / generate_continuation / infill / outpaint / loop / stream
  DecodingConfig, MagnetConfig                     decoding and LM hyperparameters

Rooms, each importing only from the ones listed before it (docs/architecture.md):

  models/      MagnetConfig and the Flax LM
  parallel/    device meshes, logical-axis sharding rules, multi-process jobs
  io/          weights and files on disk
  audio/       audio conversion, files, spectra, statistics, loudness
  text/        the T5 and BERT/MiniLM text encoders
  codec/       EnCodec in Flax
  decoding/    DecodingConfig and the one-program masked decoder
  configs/     ml_collections config files
  corpus/      the procedural music corpus
  data/        codec-token datasets and the training loader
  generation/  MagnetPipeline, pretrained.load, LoRA files, windows, prompts
  evaluation/  codec, prompt-following and FAD / KL / CLAP evaluation
  serving/     the HTTP server's library
  training/    the LM and codec trainers
  apps/        the commands
"""
import importlib

_API = {
    'load': ('magnet_jax.generation.pretrained', 'load'),
    'save_pipeline': ('magnet_jax.generation.pretrained', 'save_pipeline'),
    'MagnetPipeline': ('magnet_jax.generation.pipeline', 'MagnetPipeline'),
    'DecodingConfig': ('magnet_jax.decoding.config', 'DecodingConfig'),
    'MagnetConfig': ('magnet_jax.models.config', 'MagnetConfig'),
    'pretrained': ('magnet_jax.generation.pretrained', None),  # the module: pretrained.load, load_rescorer, ...
}
__all__ = sorted(_API)


def __getattr__(name: str):
  """Imports an API name on first use, so `import magnet_jax` stays cheap (no JAX until it is needed)."""
  if name not in _API:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  module, attribute = _API[name]
  module = importlib.import_module(module)
  return module if attribute is None else getattr(module, attribute)
