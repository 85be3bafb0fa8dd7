"""`magnet-jax serve` as a process: the console script dispatches to it (and still to sampling otherwise), bad
flags give one line, and SIGTERM drains: every queued job is finished and published whole, then it exits 0."""
import json
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
  # Limits are checked before the model loads (a checkpoint that does not exist is never opened).
  for flag, value, message in [('--port', '99999', '--port must be an integer in [1, 65535], got 99999'),
                               ('--max-duration', '-5', '--max-duration must be a number in [0.01, 86400], got -5.0'),
                               ('--max-prompt-tokens', '0', '--max-prompt-tokens must be an integer in [1, 4096]'),
                               ('--live-ahead', '17', '--live-ahead must be an integer in [1, 16], got 17')]:
    bad = _command('serve', '--checkpoint', '/nonexistent', flag, value)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith(
        f'magnet-jax serve: error: {message}'), bad.stderr[-2000:]


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
    # A last, longer job keeps the drain going while the first three are fetched.
    longer = httpx.post(f'{url}/v1/generations', json={'prompts': ['bass'], 'duration': 0.36,
                                                      'decoding': {'decoding_steps': [300, 100, 100, 100]}})
    server.send_signal(signal.SIGTERM)
    # During the drain the listener stays open: new jobs get 503, status, events and audio are answered, and
    # every progress stream ends with its job's final state.
    refused = httpx.post(f'{url}/v1/generations', json={'prompts': ['late'], 'duration': 0.36})
    assert refused.status_code == 503 and 'shutting down' in refused.json()['error']
    for job_id in ids:
      with httpx.stream('GET', f'{url}/v1/generations/{job_id}/events', timeout=300) as events:
        last = [line for line in events.iter_lines() if line.startswith('data: ')][-1]
      assert json.loads(last[6:])['state'] == 'done'
      assert httpx.get(f'{url}/v1/generations/{job_id}/audio/0').status_code == 200
    ids.append(longer.json()['id'])
    log, _ = server.communicate(timeout=600)
  finally:
    server.kill()
  # uvicorn re-raises the signal once it has shut down gracefully (after the drain), hence -SIGTERM.
  assert server.returncode in (0, -signal.SIGTERM), log[-3000:]
  assert 'draining' in log and 'stopped (0 output(s) rejected)' in log
  for job_id, name in zip(ids, ['calm-piano_0', 'a-slow-and-quiet-piano_0', 'drums_0', 'bass_0'], strict=True):
    assert sorted(os.listdir(out / job_id)) == [f'{name}.json', f'{name}.wav']  # the command line's names
    assert soundfile.info(out / job_id / f'{name}.wav').frames == 576
    assert f'job {job_id}: text, 1 prompt(s), 0.36 s of audio each, ' in log  # one line per request
  assert not [name for _, _, names in os.walk(out) for name in names if name.endswith('.tmp')]
