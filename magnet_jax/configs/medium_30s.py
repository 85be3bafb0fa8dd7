"""magnet-medium-30secs: magnet-medium with 30 s segments (T = 1500).

  python train.py --config=configs/medium_30s.py --workdir=/path/run --config.data.source=tfds --config.data.dir=DIR
"""
from magnet_jax.configs import medium


def get_config():
  config = medium.get_config()
  config.model.segment_duration = 30.0
  return config
