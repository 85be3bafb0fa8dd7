"""musicnn (Pons & Serra, 2019) in JAX: the offline default embedder of FAD and tag-KL, with weights in the wheel.

The MagnaTagATune model 'MTT_musicnn' of the `musicnn` package (ISC licence, Music Technology Group, Universitat
Pompeu Fabra; magnet_jax/assets/musicnn/LICENSE), read from its TensorFlow checkpoint without TensorFlow
(`convert_checkpoint`) and shipped as safetensors under the checkpoint's variable names. Same computation as
musicnn's extractor: a 96-band log-mel spectrogram at 16 kHz (512-point FFT, hop 256, librosa's Slaney mel,
log10(10000 x + 1) in float16), cut into 3 s patches of 187 frames; per patch the musically motivated front
end (timbral 7x38 and 7x67 convolutions, temporal 128/64/32 convolutions, max over frequency), the dense mid end
(three 7-frame convolutions with residuals), temporal max and mean pooling, and the back end: `penultimate` [200]
(the FAD embedding) and 50 tag logits (sigmoid: musicnn's tag probabilities).

Shapes: B patches, N samples, F frames, M = 96 mel bands, T = 187 frames per patch.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.audio.spectral import slaney_mel_filterbank
from magnet_jax.io.params import load_params, save_params
from magnet_jax.io.tf_checkpoint import read_variables

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # librosa.time_to_frames(3 s) + 1, as musicnn's extractor
PATCH_SAMPLES = (PATCH_FRAMES - 1) * HOP  # the shortest audio that makes one patch: shorter clips are zero-padded
NAME = 'musicnn-MTT_musicnn/1'  # embedder name/version recorded in reference statistics
WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'assets', 'musicnn', 'mtt_musicnn.safetensors')
MTT_LABELS = (
    'guitar', 'classical', 'slow', 'techno', 'strings', 'drums', 'electronic', 'rock', 'fast', 'piano', 'ambient',
    'beat', 'violin', 'vocal', 'synth', 'female', 'indian', 'opera', 'male', 'singing', 'vocals', 'no vocals',
    'harpsichord', 'loud', 'quiet', 'flute', 'woman', 'male vocal', 'no vocal', 'pop', 'soft', 'sitar', 'solo', 'man',
    'classic', 'choir', 'voice', 'new age', 'dance', 'male voice', 'female vocal', 'beats', 'harp', 'cello',
    'no voice', 'weird', 'country', 'metal', 'female voice', 'choral')
_BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default
_F16_MAX = float(np.finfo(np.float16).max)


def convert_checkpoint(prefix: str, out_path: str) -> None:
  """Writes the model variables (not the optimiser's) of musicnn's TF checkpoint PREFIX as safetensors."""
  variables = read_variables(prefix)
  params = {}
  for name, value in variables.items():
    layer, _, leaf = name.partition('/')
    if leaf and 'Adam' not in leaf:
      params.setdefault(layer, {})[leaf] = value
  save_params(out_path, params)


def load(path: str = WEIGHTS) -> dict:
  """The parameter tree {tf layer name: {variable: array}} (CheckpointError if missing or unreadable)."""
  return jax.tree.map(jnp.asarray, load_params(path))


def log_mel(padded: jax.Array) -> jax.Array:
  """[B, N] audio at 16 kHz, already padded by N_FFT / 2 on each side -> [B, 1 + (N - 512) // 256, 96]: musicnn's
  log-compressed mel spectrogram (librosa's centred frames are those of the audio zero-padded by 256 each side)."""
  frames = 1 + (padded.shape[-1] - N_FFT) // HOP
  index = np.arange(frames)[:, None] * HOP + np.arange(N_FFT)[None, :]
  window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann
  power = jnp.abs(jnp.fft.rfft(padded[:, index] * window, axis=-1)) ** 2
  mel = power @ jnp.asarray(slaney_mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS).T, jnp.float32)
  # The extractor computes log10(10000 x + 1) in float16 arithmetic; 10000 x overflows to inf (and its tags to
  # NaN) past x = 6.55, a mel power only very loud audio reaches: clipped there instead, equal wherever it is finite.
  mel = jnp.minimum(mel, _F16_MAX / 10000.0).astype(jnp.float16)
  return jnp.log10(jnp.float16(10000.0) * mel + jnp.float16(1.0)).astype(jnp.float32)


def patches(audio: np.ndarray) -> np.ndarray:
  """[N] -> [P, N'] overlapping 3 s windows of samples whose spectrogram patches cover the clip.

  Patch starts are musicnn's (every 187 frames) plus one patch ending at the last frame when the clip does not
  divide evenly, so a 5 s clip gives two patches (0-3 s and 2-5 s) instead of dropping its last 2 s.
  """
  audio = np.asarray(audio, np.float32)
  if len(audio) < PATCH_SAMPLES:
    audio = np.pad(audio, (0, PATCH_SAMPLES - len(audio)))
  frames = 1 + len(audio) // HOP
  starts = list(range(0, frames - PATCH_FRAMES + 1, PATCH_FRAMES))
  if starts[-1] != frames - PATCH_FRAMES:
    starts.append(frames - PATCH_FRAMES)
  # A patch of frames [s, s + T) needs samples [s * HOP - N_FFT/2, (s + T - 1) * HOP + N_FFT/2): cut the samples
  # with that margin from the zero-padded clip so that the patch's own spectrogram equals the clip's frames.
  padded = np.pad(audio, N_FFT // 2)
  return np.stack([padded[s * HOP:s * HOP + PATCH_SAMPLES + N_FFT] for s in starts])


def _bn(x: jax.Array, p: dict) -> jax.Array:
  return (x - p['moving_mean']) * jax.lax.rsqrt(p['moving_variance'] + _BN_EPS) * p['gamma'] + p['beta']


def _conv(x: jax.Array, p: dict, time_pad: tuple[int, int] = (0, 0)) -> jax.Array:
  """ReLU(conv2d) of [B, T, W, C] by an HWIO kernel, 'valid' except for `time_pad` zeros on the time axis."""
  y = jax.lax.conv_general_dilated(x, p['kernel'], (1, 1), (time_pad, (0, 0)),
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return jax.nn.relu(y + p['bias'])


def _block(x: jax.Array, params: dict, conv: str, bn: str, time_pad: tuple[int, int]) -> jax.Array:
  """conv -> ReLU -> batch norm -> max over the frequency axis: [B, T, M, 1] -> [B, T, C]."""
  return _bn(_conv(x, params[conv], time_pad), params[bn]).max(axis=2)


def network(params: dict, spec: jax.Array) -> tuple[jax.Array, jax.Array]:
  """[B, T, 96] log-mel patches -> (penultimate [B, 200], tag logits [B, 50]); batch norm in inference mode."""
  x = _bn(spec[..., None], params['batch_normalization'])
  front = [_block(x, params, 'conv2d', 'batch_normalization_1', (3, 3)),  # timbral 7x38
           _block(x, params, 'conv2d_1', 'batch_normalization_2', (3, 3))]  # timbral 7x67
  for i, k in enumerate((128, 64, 32)):  # temporal, TF 'same' padding on time
    front.append(_block(x, params, f'conv2d_{2 + i}', f'batch_normalization_{3 + i}', ((k - 1) // 2, k // 2)))
  front = jnp.concatenate(front, axis=-1)  # [B, T, 561]
  mid = [front]
  h = front
  for i in range(3):  # 7-frame convolutions over all channels, residual after the first
    conv = _bn(_conv(h[..., None], params[f'conv2d_{5 + i}'], (3, 3)), params[f'batch_normalization_{6 + i}'])
    h = conv[:, :, 0, :] + (h if i else 0.0)
    mid.append(h)
  features = jnp.concatenate(mid, axis=-1)  # [B, T, 753]
  # TF flattens [B, 753, (max, mean)]: max and mean interleave per feature.
  pooled = jnp.stack([features.max(axis=1), features.mean(axis=1)], axis=-1).reshape(features.shape[0], -1)
  pooled = _bn(pooled, params['batch_normalization_9'])
  hidden = jax.nn.relu(pooled @ params['dense']['kernel'] + params['dense']['bias'])
  penultimate = _bn(hidden, params['batch_normalization_10'])
  logits = penultimate @ params['dense_1']['kernel'] + params['dense_1']['bias']
  return penultimate, logits


@jax.jit
def embed_patches(params: dict, windows: jax.Array) -> tuple[jax.Array, jax.Array]:
  """[B, PATCH_SAMPLES + N_FFT] sample windows from `patches` -> (penultimate [B, 200], tag logits [B, 50])."""
  return network(params, log_mel(windows))
