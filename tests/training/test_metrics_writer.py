"""TensorBoard gets a run's audio samples (the README promises them), as events TensorBoard reads."""
import glob
import struct
import subprocess
import sys

import numpy as np
from tensorboardX.proto import event_pb2

from magnet_jax.generation import pretrained
from magnet_jax.training.metrics_writer import MetricsWriter
from magnet_jax.training.samples import SampleWriter
from magnet_jax.training.trainer import validate
from tests.helpers import REPO_ROOT, load_config


def _events(folder):
  """Every Event of the TFRecord event files in `folder` (length, crc, data, crc per record)."""
  events = []
  for path in glob.glob(f'{folder}/events.out.tfevents.*'):
    data = open(path, 'rb').read()
    at = 0
    while at < len(data):
      (length,) = struct.unpack('<Q', data[at:at + 8])
      events.append(event_pb2.Event.FromString(data[at + 12:at + 12 + length]))
      at += 12 + length + 4
  return events


def test_audio_samples_reach_tensorboard(tmp_path):
  writer = MetricsWriter(str(tmp_path))
  stereo = np.stack([np.sin(np.arange(8000) * 0.1), np.zeros(8000)]).astype(np.float32)
  writer.audio(20, 'samples/0: calm piano', stereo, 16000)
  writer.write(20, {'loss': 1.5})
  writer.close()
  values = [(e.step, v) for e in _events(tmp_path / 'tensorboard') for v in e.summary.value]
  [(step, audio)] = [(step, v) for step, v in values if v.HasField('audio')]
  assert step == 20 and audio.tag == 'samples/0: calm piano'
  assert audio.audio.sample_rate == 16000 and audio.audio.num_channels == 2 and audio.audio.length_frames == 8000
  assert audio.audio.encoded_audio_string[:4] == b'RIFF'
  assert any(v.tag == 'loss' for _, v in values)


def test_a_disabled_writer_writes_nothing(tmp_path):
  writer = MetricsWriter(str(tmp_path), enabled=False)
  writer.audio(1, 'x', np.zeros((1, 100), np.float32), 16000)
  assert not (tmp_path / 'tensorboard').exists()


def test_the_sample_writer_tells_tensorboard(tiny_pipeline_folder, tmp_path):
  config = load_config('tiny', **{'model.text_dim': 384, 'samples.prompts': ('calm piano',), 'samples.every': 10,
                                  'samples.codec': str(tiny_pipeline_folder / 'codec'),
                                  'samples.text_encoder': 'minilm', 'samples.decoding_steps': (1, 1, 1, 1)})
  heard = []
  writer = SampleWriter(config, validate(config), str(tmp_path), listen=lambda *clip: heard.append(clip))
  folder = writer(10, pretrained.load(tiny_pipeline_folder).lm_params)
  [(step, tag, audio, rate)] = heard
  assert (step, tag, rate) == (10, 'samples/0: calm piano', 1600)
  assert audio.shape[-1] == 0.6 * 1600 and (tmp_path / 'samples' / 'step_10' / '0.wav').is_file()
  assert folder == str(tmp_path / 'samples' / 'step_10')


def test_training_imports_neither_torch_nor_tensorflow():
  """train.py and the trainer (with its TensorBoard writer) leave the reference extras out, though installed here:
  tensorboardX would import torch at import time."""
  code = ('import sys, train, magnet_jax.training.trainer\n'
          'print(sorted({"torch", "tensorflow", "transformers"} & set(sys.modules)))')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
  assert result.stdout.split() == ['[]']
