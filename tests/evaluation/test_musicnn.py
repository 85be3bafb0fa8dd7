"""musicnn in JAX against the original (the `musicnn` package on TensorFlow) on the shipped MagnaTagATune weights."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from magnet_jax.evaluation import musicnn

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')  # musicnn builds its graph with tf.compat.v1.layers (Keras 2)
tf = pytest.importorskip('tensorflow', reason='the musicnn parity test needs tensorflow + tf-keras (test extra)')
musicnn_tf = pytest.importorskip('musicnn.models', reason='the original musicnn package is not installed '
                                 '(make install-test: pip install --no-deps musicnn)')
from tests.helpers import REPO_ROOT, harmonic_notes  # noqa: E402

CHECKPOINT = os.path.join(os.path.dirname(musicnn_tf.__file__), 'MTT_musicnn') + '/'


def _music(samples: int, seed: int) -> np.ndarray:
  """Decaying harmonic notes over noise, at a level below the extractor's float16 overflow (see musicnn.log_mel)."""
  return harmonic_notes(samples / musicnn.SAMPLE_RATE, musicnn.SAMPLE_RATE, seed, noise=0.02, spacing=0.25,
                        max_decay=12, level=0.03)


@pytest.fixture(scope='module')
def params():
  return musicnn.load()


def test_shipped_weights_are_the_checkpoint(params):
  """The safetensors in the wheel hold exactly the model variables of musicnn's TF checkpoint."""
  from magnet_jax.io.tf_checkpoint import read_variables
  variables = {k: v for k, v in read_variables(CHECKPOINT).items() if '/' in k and 'Adam' not in k}
  flat = {f'{layer}/{leaf}': np.asarray(v) for layer, leaves in params.items() for leaf, v in leaves.items()}
  assert sorted(flat) == sorted(variables)
  for name, value in variables.items():
    np.testing.assert_array_equal(flat[name], value, err_msg=name)


def test_network_parity_with_tensorflow(params):
  """Same spectrogram patches into musicnn's TF graph and ours: penultimate and tag probabilities to 1e-4."""
  rng = np.random.default_rng(0)
  spec = np.log10(10000 * rng.gamma(0.5, 0.02, (3, musicnn.PATCH_FRAMES, musicnn.N_MELS)) + 1).astype(np.float32)
  graph = tf.Graph()
  with graph.as_default():
    x = tf.compat.v1.placeholder(tf.float32, [None, musicnn.PATCH_FRAMES, musicnn.N_MELS])
    with tf.name_scope('model'):
      outputs = musicnn_tf.define_model(x, False, 'MTT_musicnn', len(musicnn.MTT_LABELS))
    with tf.compat.v1.Session(graph=graph) as sess:
      tf.compat.v1.train.Saver().restore(sess, CHECKPOINT)
      logits_tf, penultimate_tf = sess.run([outputs[0], outputs[-1]], {x: spec})
  penultimate, logits = musicnn.network(params, spec)
  np.testing.assert_allclose(np.asarray(penultimate), penultimate_tf, atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(1 / (1 + np.exp(-np.asarray(logits))), 1 / (1 + np.exp(-logits_tf)), atol=1e-5)


def test_end_to_end_parity_with_extractor(params, tmp_path):
  """A 6 s file (two whole patches) through musicnn's extractor (librosa + TF) and ours: tags to 2e-3.

  The loose part is the spectrogram: both compute it in float16, and float32 (ours) vs float64 (librosa) STFTs
  round a few bins to neighbouring float16 values.
  """
  path = str(tmp_path / 'clip.wav')
  audio = _music(2 * musicnn.PATCH_FRAMES * musicnn.HOP - musicnn.HOP, seed=1)
  soundfile.write(path, audio, musicnn.SAMPLE_RATE, subtype='FLOAT')
  out = str(tmp_path / 'original.npz')
  subprocess.run([sys.executable, '-m', 'reference.musicnn_tf', path, out], cwd=REPO_ROOT, check=True,
                 capture_output=True)
  with np.load(out) as original:
    taggram, labels, features = original['taggram'], original['labels'], {'penultimate': original['penultimate']}
  assert tuple(labels) == musicnn.MTT_LABELS
  windows = musicnn.patches(audio)
  assert len(windows) == len(taggram) == 2
  assert not np.isnan(taggram).any()
  penultimate, logits = musicnn.embed_patches(params, windows)
  np.testing.assert_allclose(1 / (1 + np.exp(-np.asarray(logits))), taggram, atol=2e-3)
  # The extractor's features hold the first patch's penultimate twice (its loop appends a stale variable).
  np.testing.assert_allclose(np.asarray(penultimate[0]), features['penultimate'][0], atol=2e-2, rtol=1e-2)
