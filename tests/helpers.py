"""Helpers shared by the tests: configs with overrides, random LM inputs, restoring train checkpoints."""
import contextlib
import importlib
import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax.models.params import init_params
from magnet_jax.training import trainer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str, **overrides):
  """magnet_jax/configs/<name>.py's get_config() with dotted overrides, e.g.
  load_config('tiny', **{'train.num_steps': 5})."""
  config = importlib.import_module(f'magnet_jax.configs.{name}').get_config()
  for dotted, value in overrides.items():
    *parents, leaf = dotted.split('.')
    section = config
    for p in parents:
      section = section[p]
    section[leaf] = value
  return config


def lm_inputs(config):
  """Random params of `config`'s LM and a batch of two text conditions, the second with two padded positions:
  (params, cond [2, 5, Dt], cond_mask [2, 5])."""
  params = init_params(config, jax.random.key(0))
  cond = jax.random.normal(jax.random.key(1), (2, 5, config.text_dim))
  cond_mask = jnp.array([[True] * 5, [True] * 3 + [False] * 2])
  return params, cond, cond_mask


def restore_state(workdir, config, step: int | None = None):
  """(train state on the host, data state) of `workdir`'s checkpoint at `step` (default: latest), restored on
  this process's devices in `config`'s mesh and preset."""
  state, data_state = trainer.restore_state(config, str(workdir), step)
  return jax.device_get(state), data_state


def record_windows(pipeline, monkeypatch) -> list[tuple]:
  """Records every window `pipeline` decodes (its `on_window` seam): (codes in [B, K, W], known [B, W], codes out
  [B, K, W], conditions (cond, cond_mask, uncond, uncond_mask) as the program receives them)."""
  calls = []
  monkeypatch.setattr(pipeline, 'on_window', lambda *window: calls.append(window))
  return calls


@contextlib.contextmanager
def tmpfs(folder, size: str, read_only: bool = False):
  """Mounts a tmpfs of `size` (e.g. '64k') on `folder` (created) for the block: a real full or read-only device.
  Skips the test where mounting is not permitted (it needs root)."""
  os.makedirs(folder, exist_ok=True)
  options = f'size={size}' + (',ro' if read_only else '')
  mount = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(folder)], capture_output=True, text=True)
  if mount.returncode:
    pytest.skip(f'cannot mount a tmpfs: {mount.stderr.strip()}')
  try:
    yield folder
  finally:
    subprocess.run(['umount', str(folder)], check=True)


# Meshes a multi-device test script compares with one device: name -> (mesh shape, preset, devices).
MESHES = {
    'single': ({'data': 1, 'model': 1}, 'data_parallel', 1),
    'data8': ({'data': 8, 'model': 1}, 'data_parallel', 8),
    'data2_model4': ({'data': 2, 'model': 4}, 'tensor_parallel', 8),
    'fsdp8': ({'data': 8, 'model': 1}, 'fsdp', 8),
}


def xla_flags(*flags: str) -> str:
  """XLA_FLAGS for a subprocess: the run's (tests/conftest.py's compile settings) followed by `flags`."""
  return ' '.join([os.environ.get('XLA_FLAGS', ''), *flags]).strip()


def run_on_8_devices(module: str, timeout: float = 2700) -> dict:
  """Runs `python -m module` (e.g. 'tests.multidevice') from the repository root with 8 simulated CPU devices; its
  last stdout line, JSON."""
  env = dict(os.environ, XLA_FLAGS=xla_flags('--xla_force_host_platform_device_count=8'), JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-m', module], env=env, capture_output=True, text=True, timeout=timeout,
                       cwd=REPO_ROOT)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def synthetic_losses(step, state, model, mesh, steps: int) -> tuple:
  """Runs the train `step` `steps` times on the tiny synthetic data (8 examples, seed 0) with one key:
  (state, [loss per step])."""
  from magnet_jax.data.synthetic import SyntheticSource
  source = SyntheticSource(8, num_examples=8, n_q=model.n_q, card=model.card, length=model.sequence_length,
                           text_len=4, text_dim=model.text_dim, seed=0)
  losses = []
  for _ in range(steps):
    state, metrics = step(state, trainer.global_batch(next(source), mesh), jax.random.key(1))
    losses.append(float(metrics['loss']))
  return state, losses


def without(*packages: str) -> str:
  """Python source that makes `packages` unimportable in the process that runs it, as if not installed (an import
  raises ModuleNotFoundError and they never enter sys.modules, which libraries probing for them inspect)."""
  return ('import sys\n'
          'class _Absent:\n'
          '  def find_spec(self, name, path=None, target=None):\n'
          f'    if name.split(".")[0] in {packages!r}:\n'
          '      raise ModuleNotFoundError(f"No module named {name!r}", name=name)\n'
          'sys.meta_path.insert(0, _Absent())\n')


def harmonic_notes(seconds: float, rate: int, seed: int, noise: float, spacing: float, max_decay: float,
                   level: float) -> np.ndarray:
  """[round(seconds * rate)] float32: decaying harmonic notes (4 harmonics of a random fundamental) every `spacing`
  seconds over Gaussian noise of std `noise`: music-like input for the embedders' and classifiers' parity tests."""
  rng = np.random.default_rng(seed)
  t = np.arange(round(seconds * rate)) / rate
  audio = noise * rng.standard_normal(len(t))
  for onset in np.arange(0, seconds, spacing):
    f0 = rng.choice([110.0, 220.0, 330.0, 440.0, 660.0])
    env = np.where(t >= onset, np.exp(-(t - onset) * rng.uniform(2, max_decay)), 0.0)
    audio += env * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5)) * level
  return audio.astype(np.float32)


def free_port() -> int:
  """A TCP port that is free on 127.0.0.1 now (for a server or a coordinator a test starts)."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def run_module(module: str, *args: str) -> tuple[int, str, list[str]]:
  """`python -m module args` from the repository root -> (exit code, stdout, stderr lines)."""
  result = subprocess.run([sys.executable, '-m', module, *args], capture_output=True, text=True, cwd=REPO_ROOT)
  return result.returncode, result.stdout, result.stderr.strip().splitlines()
