"""A tiny codec that trains on one CPU in seconds (tests, smoke runs).

  python -m magnet_jax.apps.codec_train --config=configs/codec_tiny.py --workdir=/tmp/codec-tiny
"""
from magnet_jax.configs import codec_default


def get_config():
  config = codec_default.get_config()
  config.codec.update(sample_rate=8000, ratios=(4, 2), n_filters=4, dimension=8, n_q=2, bins=16, lstm=1)  # 1 kHz
  config.rvq.update(kmeans_iters=5, kmeans_batch_size=4, threshold_ema_dead_code=0.5)
  config.msspec.update(range_start=5, range_end=8, n_mels=16)
  config.train.update(batch_size=4, segment_duration=0.1, num_steps=20, log_every=10, eval_every=10,
                      checkpoint_every=10)
  config.optim.update(warmup_steps=2)
  config.data.update(num_clips=40, duration=0.5, eval_clips=2)
  return config
