"""Fixtures shared by the tests (helpers that are plain functions live in tests/helpers.py), the run's one XLA
compilation cache, its compile settings, and the order in which xdist hands out the test files."""
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import jax
import pytest

from tests.helpers import load_config, run_on_8_devices, xla_flags

# Compiling is most of the suite's time and the tests' programs are small: XLA:CPU's LLVM backend at -O1 without its
# expensive passes compiles them about a quarter faster than the default -O2 and runs them as fast (measured on
# tests/models/test_lm.py and the codec's 108-clip reconstruction test), and its older elemental emitters (fusion
# emitters off) compile a train step in two thirds of the time (benchmarks/results/ci-time.md). The programs compute
# the same operations (neither setting enables fast-math), so no tolerance changes. -O0 is not used: it runs the
# codec's tests slower, and the exact-resume test fails under it. JAX reads XLA_FLAGS when its backend starts (after
# these imports, which start none); subprocesses inherit it, and the 8-device and multi-process runs add their device
# counts to it with xla_flags.
os.environ['XLA_FLAGS'] = xla_flags('--xla_backend_optimization_level=1', '--xla_llvm_disable_expensive_passes=true',
                                    '--xla_cpu_use_fusion_emitters=false')

_CACHE_OWNER = 'MAGNET_JAX_TEST_XLA_CACHE_OWNER'


def pytest_configure(config):
  """Points JAX's persistent compilation cache at one folder for the whole run: this process, the xdist workers and
  every subprocess a test starts (they inherit the environment) load a program that another one compiled instead of
  compiling it again. The tests build the same tiny programs in many files and processes, and compiling is most of
  their time. The folder is new for each run (a run never sees an older run's programs) unless
  JAX_COMPILATION_CACHE_DIR is set already."""
  if not os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='magnet-jax-test-xla-')
    os.environ[_CACHE_OWNER] = str(os.getpid())
  # Below 0.5 s are thousands of eager operations: storing and looking them up costs the run more than it saves
  # (benchmarks/results/ci-time.md).
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
  jax.config.update('jax_compilation_cache_dir', os.environ['JAX_COMPILATION_CACHE_DIR'])
  jax.config.update('jax_persistent_cache_min_compile_time_secs',
                    float(os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS']))


def pytest_unconfigure(config):
  if os.environ.get(_CACHE_OWNER) == str(os.getpid()):
    shutil.rmtree(os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)


# Test files in the order xdist hands them out (`make test` passes --no-loadscope-reorder): the slowest first (the
# multi-process and multi-device training runs; benchmarks/results/ci-time.md), so that no worker is left running
# one alone at the end; files not listed follow in collection order. test_devices.py goes last: it reads the
# 8-device run that test_sharding.py starts.
FIRST = ('tests/parallel/test_distributed.py', 'tests/parallel/test_sharding.py', 'tests/training/test_trainer.py')
LAST = ('tests/serving/test_devices.py',)


def pytest_collection_modifyitems(items):
  def rank(item):
    path = item.nodeid.partition('::')[0]
    return FIRST.index(path) if path in FIRST else len(FIRST) + (path in LAST)
  items.sort(key=rank)  # stable: each file's tests stay together and in order


def once_per_run(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
  """The folder `name` under the run's temporary root, filled by build(folder) in the first process that asks for it;
  the other xdist workers of the run wait for it (a file lock) and reuse it. A failed build leaves nothing."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    root = root.parent  # shared by the run's workers (each has its own basetemp below it)
  folder = root / name
  with open(root / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not folder.exists():
      partial = root / f'{name}.partial'
      shutil.rmtree(partial, ignore_errors=True)
      partial.mkdir()
      build(partial)
      os.replace(partial, folder)
  return folder


@pytest.fixture
def tiny_config():
  return load_config


@pytest.fixture(scope='session')
def tiny_pipeline_folder(tmp_path_factory):
  """An exported pipeline of random weights (configs/tiny.py's LM, T = 30 frames at 50 Hz; a 1.6 kHz codec; the
  packaged MiniLM) with short decoding schedules; loads without torch. Built once per run; tests must not change it."""
  from magnet_jax.decoding import DecodingConfig
  from magnet_jax.generation import random_pipeline
  def build(folder):
    random_pipeline.export(folder, decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)))
  return once_per_run(tmp_path_factory, 'tiny-pipeline', build)


@pytest.fixture(scope='session')
def on_8_devices(tmp_path_factory) -> dict:
  """{script: results} of the 8-device run (tests/multidevice.py: sharded training, LoRA and serving against one
  device), run once per test run in one subprocess with 8 simulated CPU devices."""
  def build(folder):
    (folder / 'results.json').write_text(json.dumps(run_on_8_devices('tests.multidevice')))
  return json.loads((once_per_run(tmp_path_factory, 'on-8-devices', build) / 'results.json').read_text())
