"""`magnet-jax live` as a process on the tiny exported pipeline: `--out -` is a WAV stream on stdout whose prompt
follows a timed change typed on stdin (and a change past the end is one line); Ctrl-C (also where SIGINT was
inherited as ignored) ends a file cleanly, as a valid WAV; bad flags are one line before anything loads."""
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import soundfile

from magnet_jax.audio import wav_stream
from tests.helpers import REPO_ROOT

ENTRY = 'from magnet_jax.apps.main import main; main()'
ENV = dict(os.environ, JAX_PLATFORMS='cpu')


def _live(*args: str, **kwargs) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, '-c', ENTRY, 'live', *args], cwd=REPO_ROOT, env=ENV,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_stdout_wav_stream_follows_stdin(tiny_pipeline_folder):
  process = _live('--prompt', 'calm piano', '--checkpoint', str(tiny_pipeline_folder), '--duration', '1.2',
                  '--out', '-', '--seed', '2')
  out, err = process.communicate(b'0.7:loud drums\n5:too late\n', timeout=600)
  log = err.decode().splitlines()
  assert process.returncode == 0, log[-5:]
  assert out[:wav_stream.HEADER_BYTES] == wav_stream.header(1600, 1)  # a pipe: the stream's header
  samples = np.frombuffer(out[wav_stream.HEADER_BYTES:], '<i2')
  assert samples.size == int(1.2 * 1600) and np.abs(samples).max() > 0
  assert 'magnet-jax live: a change at 5 s is outside the stream (0 to 1.2 s)' in log
  windows = [line.split(': ', 1) for line in log if ' window ' in line]
  starts = [float(head.split()[0]) for head, _ in windows]
  texts = [text.rsplit(' (', 1)[0] for _, text in windows]
  assert texts == ['loud drums' if start >= 0.7 else 'calm piano' for start in starts] and 'calm piano' in texts
  assert any(line.startswith('first audio after ') for line in log)
  assert 'real-time factor' in log[-1] and log[-1].startswith('stopped at the end')


def test_ctrl_c_leaves_a_valid_wav(tiny_pipeline_folder, tmp_path):
  path = tmp_path / 'live.wav'
  # Started as a job started with & by a script is (and as CI's runs were): SIGINT inherited as ignored, which
  # Python keeps ignoring unless the command installs its own handler (an endless stream would never stop).
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    process = _live('--prompt', 'calm piano', '--checkpoint', str(tiny_pipeline_folder), '--out', str(path))
  finally:
    signal.signal(signal.SIGINT, previous)
  watchdog = threading.Timer(300, process.kill)  # a process that never reaches window 3 fails, not hangs
  watchdog.start()
  try:
    for line in process.stdout:  # endless: wait for a few windows, then interrupt
      if b' window 3:' in line:
        break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
  finally:
    watchdog.cancel()
  assert process.returncode == 0, err.decode()[-2000:]
  assert out.decode().splitlines()[-1].startswith('stopped at Ctrl-C: ')
  data = path.read_bytes()  # the true sizes were written on close: the header states what was written
  assert data[:wav_stream.HEADER_BYTES] == wav_stream.header(1600, 1, len(data) - wav_stream.HEADER_BYTES)
  audio, rate = soundfile.read(path)
  assert rate == 1600 and audio.size >= 1600 and not list(tmp_path.glob('.*.tmp'))


def test_bad_flags_are_one_line():
  for args, message in [(['--prompt', ' '], 'prompt: empty'),
                        (['--prompt', 'x', '--duration', '1e9'], 'duration: 1e+09 s, expected more than 0'),
                        (['--prompt', 'x', '--ahead', '100'], '--ahead 100: expected 1 to 16 chunks')]:
    result = subprocess.run([sys.executable, '-c', ENTRY, 'live', *args], cwd=REPO_ROOT, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f'magnet-jax live: error: {message}')
