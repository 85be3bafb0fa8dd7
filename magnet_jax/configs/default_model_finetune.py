"""Fine-tune the embedded default (magnet_jax/assets/default) on one's own codec-token dataset: full fine-tuning,
or LoRA adapters with `--config.lora.rank=8`. A few hundred steps on 2 CPU cores; see README "Fine-tuning".

  python -m magnet_jax.apps.corpus --out /tmp/mallets --num-clips 400 --seed 7 --category mallets
  python -m magnet_jax.apps.prepare --audio /tmp/mallets --out /tmp/mallets-tokens \
      --codec magnet_jax/assets/default/codec --text minilm --cache-text --segment-duration 5
  python train.py --config=configs/default_model_finetune.py --workdir=/tmp/ft-full \
      --config.data.dir=/tmp/mallets-tokens
  python train.py --config=configs/default_model_finetune.py --workdir=/tmp/ft-lora \
      --config.data.dir=/tmp/mallets-tokens --config.lora.rank=8
"""
import os

from magnet_jax.configs import default_model

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), 'assets', 'default')


def get_config():
  config = default_model.get_config()
  config.init.source = DEFAULT_DIR
  config.train.update(num_steps=200, log_every=25, checkpoint_every=200)
  config.optim.update(lr=3e-4, warmup_steps=20, lr_min_ratio=0.1)
  config.lora.update(alpha=16.0)  # rank 8 with --config.lora.rank=8 (use lr 1e-3 for adapters)
  config.eval.update(every=100, num_examples=32, batch_size=16)
  config.samples.update(codec=os.path.join(DEFAULT_DIR, 'codec'), prompts=('solo marimba in C major',))
  return config
