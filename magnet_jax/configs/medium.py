"""magnet-medium-10secs: dim 1536, 48 layers, 24 heads, FFN 6144, 10 s segments; FSDP by default.

  python train.py --config=configs/medium.py --workdir=/path/run --config.data.source=tfds --config.data.dir=DIR
"""
from magnet_jax.configs import small


def get_config():
  config = small.get_config()
  config.model.update(dim=1536, num_heads=24, num_layers=48, remat=True)
  config.sharding.preset = 'fsdp'
  return config
