"""`magnet-jax serve` as a process: the console script dispatches to it (and still to sampling otherwise), bad
flags give one line, and SIGTERM drains: every queued job is finished and published whole, then it exits 0."""
import os
import signal
import subprocess
import sys
import time

import httpx
import soundfile

from tests.helpers import REPO_ROOT, free_port

ENTRY = 'from magnet_jax.apps.main import main; main()'


def _command(*args):
  return subprocess.run([sys.executable, '-c', ENTRY, *args], capture_output=True, text=True, timeout=300,
                        cwd=REPO_ROOT, env=dict(os.environ, JAX_PLATFORMS='cpu'))


def test_console_script_dispatch_and_flag_errors():
  serve, sample = _command('serve', '--helpfull'), _command('--helpfull')  # absl's help exits 1
  assert '--max-batch:' in serve.stdout and '--prompt:' not in serve.stdout
  assert '--prompt:' in sample.stdout and '--max-batch:' not in sample.stdout
  bad = _command('serve', '--warmup', 'soon')
  assert bad.returncode == 1
  assert bad.stderr.strip().splitlines()[-1] == ("magnet-jax serve: error: --warmup expects seconds separated by "
                                                 "commas or \"none\", got 'soon'")


def test_sigterm_drains_queued_jobs(tiny_pipeline_folder, tmp_path):
  port, out = free_port(), tmp_path / 'out'
  server = subprocess.Popen(
      [sys.executable, '-c', ENTRY, 'serve', '--checkpoint', str(tiny_pipeline_folder), '--port', str(port),
       '--warmup', 'none', '--out', str(out), '--max-wait', '0.2', '--drain', '300'],
      cwd=REPO_ROOT, env=dict(os.environ, JAX_PLATFORMS='cpu'), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True)
  try:
    url = f'http://127.0.0.1:{port}'
    for _ in range(600):
      try:
        if httpx.get(f'{url}/v1/health').status_code == 200:
          break
      except httpx.TransportError:
        time.sleep(0.2)
    # Three jobs of different prompt lengths (three batches), still queued or running when SIGTERM arrives.
    ids = [httpx.post(f'{url}/v1/generations', json={'prompts': [text], 'duration': 0.36}).json()['id']
           for text in ('calm piano', 'a slow and quiet piano', 'drums')]
    server.send_signal(signal.SIGTERM)
    log, _ = server.communicate(timeout=600)
  finally:
    server.kill()
  # uvicorn re-raises the signal once it has shut down gracefully (after the drain), hence -SIGTERM.
  assert server.returncode in (0, -signal.SIGTERM), log[-3000:]
  assert 'draining' in log and 'stopped (0 output(s) rejected)' in log
  for job_id in ids:
    assert sorted(os.listdir(out / job_id)) == ['0.json', '0.wav']
    assert soundfile.info(out / job_id / '0.wav').frames == 576
  assert not [name for _, _, names in os.walk(out) for name in names if name.endswith('.tmp')]
