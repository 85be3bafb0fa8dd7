"""A training run says where its weights came from and, last, what it wrote and the command that uses it."""
import os

from magnet_jax.training.trainer import finished, weights_source
from tests.helpers import load_config


def test_the_weights_source_in_words(tmp_path):
  config = load_config('tiny')
  assert weights_source(config, str(tmp_path), False, 0) == 'random initialisation (config.init.source is not set)'
  assert weights_source(config, str(tmp_path), True, 40).startswith(f'resumed from {tmp_path}/checkpoints at step 40')
  config = load_config('tiny', **{'init.source': str(tmp_path / 'base'), 'lora.rank': 4})
  assert weights_source(config, 'w', False, 0) == f'init.source {tmp_path}/base (frozen base of the LoRA adapters)'


def test_the_last_line_names_the_output_and_the_next_command(tmp_path):
  config = load_config('tiny', **{'init.source': str(tmp_path / 'base'), 'lora.rank': 4})
  line = finished(config, str(tmp_path / 'run'), 100)
  adapter = os.path.join(tmp_path, 'run', 'lora.safetensors')
  assert f'LoRA adapter {adapter}' in line
  assert f'magnet-jax --checkpoint {tmp_path}/base --lora {adapter}:1.0' in line
  line = finished(load_config('tiny'), str(tmp_path / 'run'), 100)
  assert f'checkpoint {tmp_path}/run/checkpoints' in line and '--resume' in line
