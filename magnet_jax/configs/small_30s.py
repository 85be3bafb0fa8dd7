"""magnet-small-30secs: magnet-small with 30 s segments (T = 1500).

  python train.py --config=configs/small_30s.py --workdir=/path/run --config.data.source=tfds --config.data.dir=DIR
"""
from magnet_jax.configs import small


def get_config():
  config = small.get_config()
  config.model.segment_duration = 30.0
  return config
