"""VGGish (Hershey et al., 2017) in JAX: the FAD embedder of Google's FAD, audiocraft and the MAGNeT paper.

Front end as Google's `vggish_input.waveform_to_examples` / `mel_features.py` (tensorflow/models,
research/audioset/vggish): 16 kHz mono audio, 25 ms periodic-Hann windows (400 samples) every 10 ms (160), the
MAGNITUDE of a 512-point FFT, 64 HTK mel bands 125-7500 Hz (`mel_matrix`), log(mel + 0.01), cut into examples of
96 frames (0.96 s) every 96 frames; an incomplete last example is dropped, as the original does. The network takes
[B, 96, 64] examples and returns [B, 128] embeddings: the output of the last 128-d layer WITHOUT a ReLU (the TF
original's fc2 has no activation; harritaylor/torchvggish appends one) and before the PCA / quantisation
post-processing, which is what FAD uses.

Weights come from a local file in torchvggish's state-dict layout (`vggish-10086976.pth`: features.{0,3,6,8,11,13},
embeddings.{0,2,4}), read by the restricted torch reader (`io/torch_pickle`, no torch; the released file is in the
legacy pre-1.6 torch.save format, which it reads as well as the zip format), or a .safetensors / .npz of the same
names; nothing is downloaded.

Shapes: B examples, N samples, F frames, T = 96 frames per example, M = 64 mel bands.
"""
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from magnet_jax.io import params as params_io
from magnet_jax.io import torch_pickle
from magnet_jax.io.errors import CheckpointError

NAME = 'vggish/1'  # embedder name/version recorded in reference statistics
SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512  # the next power of two above WINDOW, as mel_features.log_mel_spectrogram chooses it
N_MELS = 64
MEL_MIN_HZ, MEL_MAX_HZ = 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # frames per example (0.96 s), also the hop between examples
EXAMPLE_SAMPLES = (EXAMPLE_FRAMES - 1) * HOP + WINDOW  # the samples one example's frames read: 15600
EMBEDDING_SIZE = 128
# (torch index in `features`, output channels); a max pool of 2 follows the indices in _POOL_AFTER.
_CONVS = ((0, 64), (3, 128), (6, 256), (8, 256), (11, 512), (13, 512))
_POOL_AFTER = (0, 3, 8, 13)


def hertz_to_mel(hertz: np.ndarray) -> np.ndarray:
  """The HTK mel scale: 1127 ln(1 + f / 700)."""
  return 1127.0 * np.log1p(np.asarray(hertz, np.float64) / 700.0)


def mel_matrix() -> np.ndarray:
  """[N_FFT / 2 + 1, N_MELS] float64 weights, as mel_features.spectrogram_to_mel_matrix builds them: triangles
  linear in mel between band edges equally spaced in mel from 125 to 7500 Hz, evaluated at the FFT bins' centres,
  and no weight on the DC bin (HTK excludes it)."""
  bins_mel = hertz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1))[:, None]
  edges = np.linspace(hertz_to_mel(MEL_MIN_HZ), hertz_to_mel(MEL_MAX_HZ), N_MELS + 2)
  lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
  weights = np.maximum(0.0, np.minimum((bins_mel - lower) / (centre - lower), (upper - bins_mel) / (upper - centre)))
  weights[0] = 0.0
  return weights


def log_mel(audio: jax.Array) -> jax.Array:
  """[B, N] audio at 16 kHz -> [B, 1 + (N - 400) // 160, 64] log(mel magnitude + 0.01) frames (no padding)."""
  frames = 1 + (audio.shape[-1] - WINDOW) // HOP
  index = np.arange(frames)[:, None] * HOP + np.arange(WINDOW)[None, :]
  window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)).astype(np.float32)  # periodic Hann
  magnitude = jnp.abs(jnp.fft.rfft(audio[:, index] * window, n=N_FFT, axis=-1))  # zero-padded to 512, as np.fft
  return jnp.log(magnitude @ jnp.asarray(mel_matrix(), jnp.float32) + LOG_OFFSET)


def example_count(samples: int) -> int:
  """How many examples `example_windows` cuts from a clip of `samples` samples."""
  return max(0, samples - EXAMPLE_SAMPLES) // (EXAMPLE_FRAMES * HOP) + 1


def example_windows(audio: np.ndarray) -> np.ndarray:
  """[N] -> [P, EXAMPLE_SAMPLES]: the samples of each 0.96 s example (example p's frames start at 15360 p).

  As waveform_to_examples, only whole examples count (a 10 s clip gives 10, its last 0.4 s unused); a clip too
  short for one (under 0.975 s, for which the original returns none) is zero-padded to one, so every clip counts.
  """
  audio = np.asarray(audio, np.float32)
  if len(audio) < EXAMPLE_SAMPLES:
    audio = np.pad(audio, (0, EXAMPLE_SAMPLES - len(audio)))
  stride = EXAMPLE_FRAMES * HOP
  starts = range(0, len(audio) - EXAMPLE_SAMPLES + 1, stride)
  return np.stack([audio[s:s + EXAMPLE_SAMPLES] for s in starts])


def from_torch_state_dict(state: dict) -> dict:
  """torchvggish's state dict {name: array} -> the parameter tree of `network` (HWIO kernels, [in, out] dense).

  Raises:
    KeyError: a weight is missing.
  """
  params = {}
  for index, _ in _CONVS:
    weight = np.asarray(state[f'features.{index}.weight'], np.float32)  # [O, I, kh, kw]
    params[f'conv{index}'] = {'kernel': weight.transpose(2, 3, 1, 0),
                              'bias': np.asarray(state[f'features.{index}.bias'], np.float32)}
  for index in (0, 2, 4):
    params[f'fc{index}'] = {'kernel': np.asarray(state[f'embeddings.{index}.weight'], np.float32).T,
                            'bias': np.asarray(state[f'embeddings.{index}.bias'], np.float32)}
  return params


def load(path: str) -> dict:
  """The parameters of a torchvggish checkpoint: `vggish-10086976.pth` (a torch.save file, legacy or zip format), or a
  .safetensors / .npz holding the same state-dict names.

  Raises:
    CheckpointError: missing, unreadable, or without VGGish's weights.
  """
  if not os.path.isfile(path):
    raise CheckpointError(f'VGGish checkpoint not found: {path} (torchvggish\'s vggish-10086976.pth, or a '
                          '.safetensors / .npz of its state dict)')
  if path.endswith('.npz'):
    try:
      with np.load(path) as data:
        state = dict(data)
    except (OSError, ValueError) as e:
      raise CheckpointError(f'{path}: unreadable .npz ({e})') from e
  elif path.endswith('.safetensors'):
    state = params_io.load_params(path)
  else:
    state = torch_pickle.load(path)
  try:
    params = from_torch_state_dict(state)
  except (KeyError, TypeError, AttributeError) as e:
    raise CheckpointError(f'{path} is not a torchvggish state dict (features.N / embeddings.N): missing {e}') from e
  if params['fc4']['kernel'].shape != (4096, EMBEDDING_SIZE) or params['conv0']['kernel'].shape != (3, 3, 1, 64):
    raise CheckpointError(f'{path}: not VGGish\'s shapes (embeddings.4.weight {params["fc4"]["kernel"].T.shape})')
  return jax.tree.map(jnp.asarray, params)


def network(params: dict, examples: jax.Array) -> jax.Array:
  """[B, 96, 64] log-mel examples -> [B, 128] embeddings: the last layer's output before any ReLU (the TF
  original's, which Google's FAD uses; torchvggish's `embeddings` ends with a ReLU this leaves out)."""
  x = examples[..., None]  # NHWC: time is the height, mel the width, as the TF original
  for index, _ in _CONVS:
    x = jax.lax.conv_general_dilated(x, params[f'conv{index}']['kernel'], (1, 1), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    x = jax.nn.relu(x + params[f'conv{index}']['bias'])
    if index in _POOL_AFTER:
      x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), 'VALID')
  x = x.reshape(x.shape[0], -1)  # [B, 6 * 4 * 512] in (time, mel, channel) order, as torchvggish flattens
  x = jax.nn.relu(x @ params['fc0']['kernel'] + params['fc0']['bias'])
  x = jax.nn.relu(x @ params['fc2']['kernel'] + params['fc2']['bias'])
  return x @ params['fc4']['kernel'] + params['fc4']['bias']


@jax.jit
def embed_windows(params: dict, windows: jax.Array) -> jax.Array:
  """[B, EXAMPLE_SAMPLES] from `example_windows` -> [B, 128] embeddings."""
  return network(params, log_mel(windows))


def embed(params: dict, clips: Sequence[np.ndarray], batch_size: int = 32, desc: str = 'vggish',
          progress: bool = True) -> np.ndarray:
  """[[N] audio at 16 kHz] -> [P, 128] embeddings of every clip's examples, in clip order, in jitted batches of
  `batch_size` examples (the last padded to the same shape) with a tqdm bar."""
  windows = [example_windows(audio) for audio in clips]
  flat = np.concatenate(windows) if windows else np.zeros((0, EXAMPLE_SAMPLES), np.float32)
  out = []
  with tqdm.tqdm(total=len(flat), desc=desc, unit='example', disable=not progress) as bar:
    for start in range(0, len(flat), batch_size):
      batch = flat[start:start + batch_size]
      pad = batch_size - len(batch)  # one compiled shape
      out.append(np.asarray(jax.device_get(embed_windows(params, np.pad(batch, ((0, pad), (0, 0))))))[:len(batch)])
      bar.update(len(batch))
  return np.concatenate(out) if out else np.zeros((0, EMBEDDING_SIZE), np.float32)
