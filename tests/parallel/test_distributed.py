"""Multi-host training on JAX's distributed runtime, proved on one machine.

`train.py` runs as 2 processes x 4 simulated CPU devices (gloo collectives, coordinator on a free localhost port)
and as 1 process x 8 devices on the same config, data and seed: the loss curves match, only process 0 logs and
writes metrics, the checkpoint written by both processes resumes on 1 process with another mesh and partitioning,
and a killed process brings the other down with a one-line error instead of a hang.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from magnet_jax.parallel import distributed
from magnet_jax.parallel.sharding import make_mesh
from magnet_jax.training import trainer
from tests.helpers import free_port, load_config, restore_state, xla_flags

TOL = 1e-5  # fp32, relative: only the order of cross-device reductions differs
STEPS = 6
TIMEOUT = 300  # seconds for any launched job
HEARTBEAT = 5  # seconds: --heartbeat-timeout of the lost-process tests
TRAIN = ['--config=configs/tiny.py', f'--config.train.num_steps={STEPS}', '--config.train.log_every=1',
         '--config.train.checkpoint_every=3', '--config.sharding.preset=fsdp']
TENSOR_PARALLEL = ['--config.sharding.mesh.data=2', '--config.sharding.mesh.model=4',
                   '--config.sharding.preset=tensor_parallel']


def _launch(workdir, num_processes: int, *flags: str, devices: int = 8) -> list[tuple[subprocess.Popen, str]]:
  """Starts `train.py --workdir=workdir *flags` as `num_processes` processes sharing `devices` CPU devices;
  returns (process, stderr log path) per process."""
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=xla_flags(f'--xla_force_host_platform_device_count={devices // num_processes}'))
  coordinator = [f'--coordinator-address=localhost:{free_port()}', f'--num-processes={num_processes}']
  os.makedirs(workdir, exist_ok=True)
  launched = []
  for i in range(num_processes):
    log = os.path.join(os.path.dirname(workdir), f'{os.path.basename(workdir)}.{i}.log')
    args = [*flags, *(coordinator + [f'--process-id={i}'] if num_processes > 1 else [])]
    with open(log, 'w') as f:
      launched.append((subprocess.Popen([sys.executable, 'train.py', f'--workdir={workdir}', *args], env=env,
                                        stdout=subprocess.DEVNULL, stderr=f), log))
  return launched


def _finish(launched, timeout: float = TIMEOUT) -> list[str]:
  """Waits for every process (killing all if one overruns); asserts they succeeded; returns their stderr."""
  deadline = time.monotonic() + timeout
  try:
    for process, _ in launched:
      process.wait(timeout=max(deadline - time.monotonic(), 1))
  finally:
    for process, _ in launched:
      if process.poll() is None:
        process.kill()
  logs = [open(log).read() for _, log in launched]
  for (process, _), log in zip(launched, logs, strict=True):
    assert process.returncode == 0, log[-3000:]
  return logs


def _rows(workdir) -> list[dict]:
  """The training rows of metrics.jsonl (the step-0 row holds parameter counts)."""
  rows = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  return [row for row in rows if 'loss' in row]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """Workdirs and stderr of: 2x4 and 1x8 runs of STEPS steps, and a 1x8 tensor-parallel run resumed from the
  2x4 run's step-3 checkpoint."""
  root = tmp_path_factory.mktemp('multihost')
  two, one, resumed = str(root / 'two_by_four'), str(root / 'one_by_eight'), str(root / 'resumed')
  logs = {'two': _finish(_launch(two, 2, *TRAIN))}
  logs['one'] = _finish(_launch(one, 1, *TRAIN))
  shutil.copytree(os.path.join(two, 'checkpoints', '3'), os.path.join(resumed, 'checkpoints', '3'))
  logs['resumed'] = _finish(_launch(resumed, 1, *TRAIN, *TENSOR_PARALLEL, '--resume'))
  return {'two': two, 'one': one, 'resumed': resumed, 'logs': logs}


def _assert_losses_match(rows, reference):
  assert [r['step'] for r in rows] == [r['step'] for r in reference]
  for a, b in zip(rows, reference, strict=True):
    assert abs(a['loss'] - b['loss']) <= TOL * abs(b['loss']), (rows, reference)


def test_two_processes_match_one_process(runs):
  two, one = _rows(runs['two']), _rows(runs['one'])
  assert [r['step'] for r in one] == list(range(1, STEPS + 1))
  _assert_losses_match(two, one)
  assert one[-1]['loss'] != one[0]['loss']  # it trained


def test_only_process_zero_logs_and_writes_metrics(runs):
  lead, other = runs['logs']['two']
  assert 'step 6/6 loss' in lead and '2 processes joined' in lead
  info = [line for line in other.splitlines() if line[:1] == 'I' and line[1:5].isdigit()]  # absl INFO lines
  assert not info and 'train:' not in other, other[-2000:]  # no INFO logs, no progress bar
  lines = open(os.path.join(runs['two'], 'metrics.jsonl')).readlines()
  assert len(lines) == STEPS + 1  # one writer: the parameter counts, then one row per step
  assert sorted(os.listdir(runs['two'])) == ['checkpoints', 'config.json', 'metrics.jsonl', 'tensorboard']
  assert len(os.listdir(os.path.join(runs['two'], 'tensorboard'))) == 1  # one event file


def test_checkpoint_from_two_processes_resumes_on_one_with_another_mesh(runs):
  # Both processes wrote their own shards of the FSDP-sharded state.
  shards = os.listdir(os.path.join(runs['two'], 'checkpoints', '3', 'state'))
  assert {'ocdbt.process_0', 'ocdbt.process_1'} <= set(shards)
  # Resumed at step 3 on 1 process x (data 2 x model 4): the next steps continue the 2-process run's curve.
  _assert_losses_match(_rows(runs['resumed']), _rows(runs['two'])[3:])
  # The final states agree, restored here on yet another topology (this process's single device).
  config = load_config('tiny', **{'train.num_steps': STEPS, 'sharding.preset': 'fsdp'})
  states = {name: restore_state(runs[name], config, STEPS) for name in ('two', 'one', 'resumed')}
  assert {data['position'] for _, data in states.values()} == {STEPS * config.train.batch_size}
  for name in ('one', 'resumed'):
    assert int(states[name][0].step) == STEPS
    diff = max(float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(states['two'][0].params),
                                                          jax.tree.leaves(states[name][0].params), strict=True))
    assert diff <= TOL, (name, diff)


ONE_LINE = 'another process of the job probably died'  # train.py's error when a collective fails
ABORT = 'Terminating process because the JAX distributed service detected fatal errors'  # JAX's, on lost heartbeats


@pytest.mark.parametrize('victim, sig, messages', [
    # Killed (here the coordinator): the survivor's next collective fails on the closed connection and train.py
    # says so in one line, or, if that takes longer, the lost coordination service aborts it; whichever is first.
    (0, signal.SIGKILL, (ONE_LINE, ABORT)),
    # Frozen (connections stay open): the coordination service misses its heartbeats and aborts the others.
    (1, signal.SIGSTOP, (ABORT,)),
], ids=['killed_coordinator', 'frozen_worker'])
def test_lost_process_stops_the_other_with_a_clear_error(tmp_path, victim, sig, messages):
  workdir = str(tmp_path / 'lost')
  launched = _launch(workdir, 2, '--config=configs/tiny.py', '--config.train.num_steps=100000',
                     '--config.train.log_every=1', '--config.train.checkpoint_every=100000',
                     f'--heartbeat-timeout={HEARTBEAT}')
  (lost, _), (survivor, log) = launched[victim], launched[1 - victim]
  metrics = os.path.join(workdir, 'metrics.jsonl')
  try:
    deadline = time.monotonic() + TIMEOUT
    while not (os.path.exists(metrics) and len(open(metrics).readlines()) >= 2):  # training is under way
      assert time.monotonic() < deadline and survivor.poll() is None, open(log).read()[-2000:]
      time.sleep(0.5)
    lost.send_signal(sig)
    start = time.monotonic()
    survivor.wait(timeout=HEARTBEAT + 30)
    elapsed = time.monotonic() - start
  finally:
    for process, _ in launched:
      if process.poll() is None:
        process.kill()
        process.wait()
  text = open(log).read()
  assert survivor.returncode != 0 and any(m in text for m in messages), text[-3000:]
  if ONE_LINE in text:
    last = text.strip().splitlines()[-1]
    assert survivor.returncode == 1 and last.startswith('train.py: error:'), last
    assert last.endswith(f'[process {1 - victim} of 2]'), last
  print(f'process {1 - victim} exited (status {survivor.returncode}) {elapsed:.1f}s after process {victim} got '
        f'{sig.name}')


@pytest.mark.parametrize('kwargs, message', [
    ({'mode': 'sometimes'}, 'expected one of'),
    ({'num_processes': 2}, 'needs --coordinator-address'),
    ({'coordinator_address': 'localhost:1', 'num_processes': 2, 'process_id': 2}, 'not in'),
])
def test_initialize_rejects_bad_settings(kwargs, message, monkeypatch):
  for name in distributed.ENV.values():
    monkeypatch.delenv(name, raising=False)
  with pytest.raises(ValueError, match=message):
    distributed.initialize(**kwargs)


def test_initialize_runs_alone_without_settings_or_launcher(monkeypatch):
  for name in (*distributed.ENV.values(), 'SLURM_NTASKS', 'OMPI_COMM_WORLD_SIZE'):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setattr(distributed, 'detect_launcher', lambda: None)
  assert not distributed.initialize('auto') and not distributed.initialize('off', 'localhost:1', 2, 0)


def test_mesh_data_axis_must_split_the_batch_between_processes(monkeypatch):
  config = load_config('tiny')
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  with pytest.raises(ValueError, match='not a multiple of the 2 processes'):
    trainer._check_mesh(config, trainer.validate(config), make_mesh({'data': 1, 'model': 1}))
