"""audio-magnet-medium: audio-magnet-small's text encoder, codec and optimiser with magnet-medium sizes (FSDP).

  python train.py --config=configs/audio_medium.py --workdir=/path/run --config.data.source=tfds --config.data.dir=DIR
"""
from magnet_jax.configs import audio_small, medium


def get_config():
  config = audio_small.get_config()
  config.model.update(medium.get_config().model.to_dict())
  config.model.text_dim = 1024
  config.sharding.preset = 'fsdp'
  return config
