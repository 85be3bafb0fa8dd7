"""The embedded default: a tiny MAGNeT trained on the embedded codec's tokens of the procedural corpus.

Rebuild magnet_jax/assets/default (corpus -> tokens -> training with this config -> export), about 75 minutes on
2 CPU cores:

  python -m magnet_jax.apps.default_model --workdir=/tmp/magnet-embedded

whose training step is (see magnet_jax/training/default_model.py):

  python train.py --config=configs/default_model.py --workdir=/tmp/magnet-embedded/train \
      --config.data.dir=/tmp/magnet-embedded/tokens
"""
from magnet_jax.configs import base


def get_config():
  config = base.get_config()
  # The embedded codec's 4 x 256 codes at 50 Hz, 5 s segments (T = 250), MiniLM captions (Dt = 384); 2.8 M params.
  config.model.update(dim=192, num_heads=4, num_layers=4, hidden_scale=4, n_q=4, card=256, text_dim=384,
                      frame_rate=50, segment_duration=5.0)
  config.train.update(batch_size=16, num_steps=2000, log_every=50, checkpoint_every=250, max_checkpoints=1,
                      cfg_dropout=0.2)
  config.optim.update(lr=1e-3, warmup_steps=100, lr_min_ratio=0.1)
  config.data.update(source='tfds', caption_len=32, sample_rate=16000)  # MiniLM states cached by prepare.py
  return config
