"""A tiny MAGNeT that trains on one CPU in seconds (tests, smoke runs).

  python train.py --config=configs/tiny.py --workdir=/tmp/magnet-tiny
"""
from magnet_jax.configs import base


def get_config():
  config = base.get_config()
  config.model.update(dim=64, num_heads=4, num_layers=2, card=32, text_dim=16, segment_duration=0.6)  # T = 30
  config.train.update(batch_size=8, num_steps=300, log_every=50, checkpoint_every=100, cfg_dropout=0.1)
  config.optim.update(lr=3e-3, warmup_steps=20, weight_decay=0.0)
  config.data.update(num_examples=8, text_len=4)
  return config
