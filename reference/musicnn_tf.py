"""The original musicnn (TensorFlow) on one audio file, in its own process: its module disables TF's eager mode
for the whole process, which other tests (tensorflow-datasets) need.

  python -m reference.musicnn_tf AUDIO OUT.npz     # writes taggram [P, 50], penultimate [P, 200]
"""
import os
import sys

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')  # musicnn builds its graph with tf.compat.v1.layers (Keras 2)

import numpy as np  # noqa: E402
from musicnn import extractor  # noqa: E402


def main(audio_path: str, out_path: str) -> None:
  taggram, labels, features = extractor.extractor(audio_path, model='MTT_musicnn', extract_features=True)
  np.savez(out_path, taggram=taggram, penultimate=features['penultimate'], labels=np.array(labels))


if __name__ == '__main__':
  main(*sys.argv[1:])
