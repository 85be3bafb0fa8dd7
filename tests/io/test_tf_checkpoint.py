"""The TensorFlow checkpoint reader (no TensorFlow at run time) against checkpoints TensorFlow writes."""
import numpy as np
import pytest

from magnet_jax.io.errors import CheckpointError
from magnet_jax.io.tf_checkpoint import read_variables


def test_reads_what_tensorflow_writes(tmp_path):
  tf = pytest.importorskip('tensorflow', reason='writing a reference checkpoint needs tensorflow (test extra)')
  rng = np.random.default_rng(0)
  values = {'dense/kernel': rng.normal(size=(7, 3)).astype(np.float32), 'dense/bias': np.arange(3, dtype=np.float64),
            'step': np.array(42, np.int64), 'half': rng.normal(size=(2, 2, 2)).astype(np.float16),
            'many/' + 'x' * 40: rng.normal(size=(300,)).astype(np.float32)}  # long shared key prefixes
  for i in range(200):  # enough entries for several index blocks
    values[f'layer_{i:03d}/w'] = np.full((2,), i, np.int32)
  graph = tf.Graph()
  with graph.as_default():
    variables = [tf.compat.v1.Variable(v, name=k) for k, v in values.items()]
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      prefix = tf.compat.v1.train.Saver(variables).save(sess, str(tmp_path / 'model'))
  read = read_variables(prefix)
  assert sorted(read) == sorted(values)
  for name, value in values.items():
    assert read[name].dtype == value.dtype, name
    np.testing.assert_array_equal(read[name], value, err_msg=name)


def test_bad_checkpoints(tmp_path):
  with pytest.raises(CheckpointError, match='no TensorFlow checkpoint index at'):
    read_variables(str(tmp_path / 'missing'))
  (tmp_path / 'bad.index').write_bytes(b'\0' * 64)
  with pytest.raises(CheckpointError, match='not a TensorFlow checkpoint index'):
    read_variables(str(tmp_path / 'bad'))
