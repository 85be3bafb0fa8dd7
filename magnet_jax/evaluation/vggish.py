"""VGGish (Hershey et al., 2017) in JAX: the FAD embedder of Google's FAD, audiocraft and the MAGNeT paper.

The network only, for now: weights from a local checkpoint in harritaylor/torchvggish's state-dict layout
(`vggish-10086976.pth`: features.{0,3,6,8,11,13}, embeddings.{0,2,4}) mapped by `from_torch_state_dict`, never
downloaded. It takes [B, 96, 64] log-mel examples (0.96 s: 25 ms windows, 10 ms hops, 64 HTK mel bands 125-7500 Hz,
log(mel + 0.01)) and returns [B, 128] embeddings (before the PCA / quantisation post-processing, which FAD skips).
The log-mel front end and the command's `--embedder vggish` are not wired yet.

Shapes: B examples, T = 96 frames, M = 64 mel bands.
"""
import jax
import jax.numpy as jnp
import numpy as np

NAME = 'vggish/1'
SAMPLE_RATE = 16000
# (torch index in `features`, output channels); a max pool of 2 follows the indices in _POOL_AFTER.
_CONVS = ((0, 64), (3, 128), (6, 256), (8, 256), (11, 512), (13, 512))
_POOL_AFTER = (0, 3, 8, 13)


def from_torch_state_dict(state: dict) -> dict:
  """torchvggish's state dict {name: array} -> the parameter tree of `network` (HWIO kernels, [in, out] dense)."""
  params = {}
  for index, _ in _CONVS:
    weight = np.asarray(state[f'features.{index}.weight'], np.float32)  # [O, I, kh, kw]
    params[f'conv{index}'] = {'kernel': weight.transpose(2, 3, 1, 0),
                              'bias': np.asarray(state[f'features.{index}.bias'], np.float32)}
  for index in (0, 2, 4):
    params[f'fc{index}'] = {'kernel': np.asarray(state[f'embeddings.{index}.weight'], np.float32).T,
                            'bias': np.asarray(state[f'embeddings.{index}.bias'], np.float32)}
  return params


def network(params: dict, examples: jax.Array) -> jax.Array:
  """[B, 96, 64] log-mel examples -> [B, 128] embeddings (ReLU'd, as torchvggish's `embeddings` ends)."""
  x = examples[..., None]  # NHWC: time is the height, mel the width, as the TF original
  for index, _ in _CONVS:
    x = jax.lax.conv_general_dilated(x, params[f'conv{index}']['kernel'], (1, 1), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    x = jax.nn.relu(x + params[f'conv{index}']['bias'])
    if index in _POOL_AFTER:
      x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), 'VALID')
  x = x.reshape(x.shape[0], -1)  # [B, 6 * 4 * 512] in (time, mel, channel) order, as torchvggish flattens
  for index in (0, 2, 4):
    x = jax.nn.relu(x @ params[f'fc{index}']['kernel'] + params[f'fc{index}']['bias'])
  return x
