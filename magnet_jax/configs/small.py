"""magnet-small-10secs: dim 1024, 24 layers, 16 heads, FFN 4096, 4 x 2048 codes at 50 Hz, 10 s segments.

  python train.py --config=configs/small.py --workdir=/path/run --config.data.source=tfds --config.data.dir=DIR
"""
from magnet_jax.configs import base


def get_config():
  config = base.get_config()
  config.model.update(dim=1024, num_heads=16, num_layers=24, hidden_scale=4, n_q=4, card=2048, text_dim=768,
                      segment_duration=10.0, dtype='bfloat16')
  return config
