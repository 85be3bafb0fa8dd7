"""audio-magnet-small: text-to-sound; magnet-small sizes with t5-large text (1024-d) and the 16 kHz EnCodec
(stride 320 -> 50 Hz, 4 x 2048), 10 s segments, CFG dropout 0.1, AdamW 5e-4 with inverse-sqrt warmup 3000.

  python train.py --config=configs/audio_small.py --workdir=/path/run --config.data.source=tfds --config.data.dir=DIR
"""
from magnet_jax.configs import small


def get_config():
  config = small.get_config()
  config.model.text_dim = 1024
  config.train.update(batch_size=256, cfg_dropout=0.1)
  config.optim.update(lr=5e-4, schedule='inverse_sqrt', warmup_steps=3_000)
  return config
