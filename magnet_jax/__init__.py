"""magnet-jax: MAGNeT (Ziv et al., ICLR 2024) in JAX/Flax.

The public API, importable from here (each name lives in one module of the package):

  load(folder=None, **kwargs) -> MagnetPipeline   a released or exported folder; None: the embedded default
  MagnetPipeline                                   generate / generate_continuation / infill / outpaint / loop / stream
  DecodingConfig, MagnetConfig                     decoding and LM hyperparameters

Rooms (each imports only from the ones listed before it): models, io, audio, text, codec, decoding, configs, corpus,
data, generation, evaluation, training, serving, apps. See docs/architecture.md.
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
