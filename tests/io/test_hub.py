"""Hub names resolve through huggingface_hub's cache layout, offline; without the files, one line says how to get
them."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from magnet_jax.generation import pretrained
from magnet_jax.io import hub
from magnet_jax.io.folders import find_model_folder
from tests.helpers import REPO_ROOT

COMMIT = '0123456789abcdef0123456789abcdef01234567'


def _cache_repo(cache, name, source):
  """Lays `source`'s files out as huggingface_hub does: blobs/ holds the bytes, snapshots/<commit>/ links to them,
  refs/main names the commit."""
  repo = cache / ('models--' + name.replace('/', '--'))
  (repo / 'refs').mkdir(parents=True)
  (repo / 'refs' / 'main').write_text(COMMIT)
  for root, _, names in os.walk(source):
    for file in names:
      relative = os.path.relpath(os.path.join(root, file), source)
      blob = repo / 'blobs' / f'{abs(hash(relative)):x}'
      blob.parent.mkdir(exist_ok=True)
      shutil.copy(os.path.join(root, file), blob)
      link = repo / 'snapshots' / COMMIT / relative
      link.parent.mkdir(parents=True, exist_ok=True)
      link.symlink_to(os.path.relpath(blob, link.parent))
  return repo / 'snapshots' / COMMIT


@pytest.fixture
def cache(tmp_path, monkeypatch):
  monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hub'))
  monkeypatch.setenv('HF_HUB_OFFLINE', '1')
  return tmp_path / 'hub'


def test_load_finds_a_hub_name_in_the_cache(cache, tiny_pipeline_folder):
  snapshot = _cache_repo(cache, 'facebook/magnet-tiny', tiny_pipeline_folder)
  assert hub.resolve('facebook/magnet-tiny') == str(snapshot)
  pipeline = pretrained.load('facebook/magnet-tiny')
  np.testing.assert_array_equal(pipeline.lm_config.n_q, pretrained.load(tiny_pipeline_folder).lm_config.n_q)


def test_hf_home_locates_the_cache(tmp_path, monkeypatch):
  monkeypatch.delenv('HF_HUB_CACHE', raising=False)
  monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
  (tmp_path / 'encodec').mkdir()
  (tmp_path / 'encodec' / 'config.json').write_text('{}')
  snapshot = _cache_repo(tmp_path / 'hf' / 'hub', 'facebook/encodec_32khz', tmp_path / 'encodec')
  assert find_model_folder('facebook/encodec_32khz', [str(tmp_path / 'elsewhere')]) == str(snapshot)


def test_offline_without_the_files_says_how_to_get_them(cache):
  with pytest.raises(FileNotFoundError, match='huggingface-cli download facebook/magnet-small-10secs'):
    pretrained.load('facebook/magnet-small-10secs')


def test_the_command_says_it_in_one_line(cache, tmp_path):
  run = subprocess.run([sys.executable, 'sample.py', '--prompt', 'piano', '--checkpoint',
                        'facebook/magnet-small-10secs', '--out', str(tmp_path / 'out')],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
  line = run.stderr.strip().splitlines()[-1]
  assert run.returncode == 1 and line.startswith('sample.py: error: facebook/magnet-small-10secs: no such folder')
  assert 'huggingface-cli download facebook/magnet-small-10secs' in line
