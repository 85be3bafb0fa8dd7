"""Stand-ins for the modules audiocraft imports at load time but that cannot be installed here.

audiocraft needs `xformers.ops` (memory-efficient attention), `torchaudio` and `spacy` at import time, and `av`,
`librosa` and `soundfile` (audio files, chroma), which a working install provides and the GPU benchmark's machine
(pure-Python wheels only, benchmarks/gpu.sh) may lack. Only xformers is used on MAGNeT's (and MusicGen's) compute
path: its `memory_efficient_attention` is reimplemented with torch SDPA honouring the additive bias or the causal
mask, which is exactly what the released models compute. Call `import_audiocraft()` instead of `import audiocraft`.
"""
import importlib
import importlib.machinery
import sys
import types


def _module(name: str, **attrs) -> types.ModuleType:
  module = types.ModuleType(name)
  module.__spec__ = importlib.machinery.ModuleSpec(name, None)
  module.__dict__.update(attrs)
  return module


def _xformers_ops():
  import torch

  class LowerTriangularMask:
    """Marker class; audiocraft only checks isinstance against it."""

  def memory_efficient_attention(q, k, v, attn_bias=None, p=0.0):
    """q, k, v: [B, T, H, D]; attn_bias: additive [B, H, Tq, Tk], a LowerTriangularMask (MusicGen's causal
    self-attention over a full sequence, Tq == Tk) or None."""
    causal = isinstance(attn_bias, LowerTriangularMask)
    if causal and q.shape[1] != k.shape[1]:
      raise NotImplementedError('LowerTriangularMask with cached keys (audiocraft raises too)')
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=None if causal else attn_bias, dropout_p=p, is_causal=causal)
    return out.transpose(1, 2)

  return _module('xformers.ops', unbind=torch.unbind, LowerTriangularMask=LowerTriangularMask,
                 memory_efficient_attention=memory_efficient_attention)


def _unavailable(name: str):
  def call(*args, **kwargs):
    raise RuntimeError(f'{name} is not available in this environment (import stand-in)')
  return call


def _lazy_module(name: str) -> types.ModuleType:
  """A module whose every attribute is a callable that raises when used (import-time names only)."""
  module = _module(name)

  def getattr_(attr: str):
    if attr.startswith('__'):
      raise AttributeError(attr)
    return _unavailable(f'{name}.{attr}')

  module.__getattr__ = getattr_
  return module


def install() -> None:
  """Registers the stand-ins in sys.modules (idempotent)."""
  if 'xformers.ops' not in sys.modules:
    ops = _xformers_ops()
    sys.modules['xformers'] = _module('xformers', ops=ops)
    sys.modules['xformers.ops'] = ops
  try:
    import torchaudio  # noqa: F401  (a working install wins)
  except Exception:  # its compiled library fails against torch 2.13
    transforms = _lazy_module('torchaudio.transforms')
    functional = _lazy_module('torchaudio.functional')
    sys.modules['torchaudio'] = _module('torchaudio', transforms=transforms, functional=functional)
    sys.modules['torchaudio.transforms'] = transforms
    sys.modules['torchaudio.functional'] = functional
  if 'spacy' not in sys.modules:
    sys.modules['spacy'] = _lazy_module('spacy')
  for name in ('av', 'librosa', 'soundfile'):  # audio files and chroma, never on the LM's path
    try:
      importlib.import_module(name)
    except ImportError:
      sys.modules[name] = _lazy_module(name)


def import_audiocraft():
  """Imports audiocraft with the stand-ins and the xformers attention backend (the one MAGNeT needs)."""
  install()
  audiocraft = importlib.import_module('audiocraft')
  transformer = importlib.import_module('audiocraft.modules.transformer')
  transformer.set_efficient_attention_backend('xformers')
  return audiocraft
