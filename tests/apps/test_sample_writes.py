"""Sampling's writes under interruptions, concurrent writers and a full disk: an audio file and its sidecar are
one unit, temporary files of dead writers are cleaned, output names are claimed, and a full disk is one line."""
import errno
import json
import os
import signal
import subprocess
import sys

import pytest

from magnet_jax.apps import runner
from magnet_jax.generation.prompts import Prompt
from magnet_jax.generation.sample_files import SampleOptions, sample
from magnet_jax.io import files
from tests.helpers import REPO_ROOT as REPO
from tests.helpers import tmpfs

PROMPTS = (Prompt('calm piano'), Prompt('fast drums'))

# Runs sample() twice in one process: a normal run (temp 1.0), a copy of its files, then an --overwrite run
# (temp 3.0) killed by SIGKILL right after the first audio file of the batch is renamed into place.
_KILLED_RUN = '''
import os, shutil, signal, sys
from magnet_jax.generation.sample_files import SampleOptions, sample
from magnet_jax.generation.prompts import Prompt
from magnet_jax.io import files
from magnet_jax.io import files
folder, out = sys.argv[1:]
options = SampleOptions(prompts=(Prompt('calm piano'), Prompt('fast drums')), checkpoint=folder, out=out,
                        sampling={'temp': 1.0}, overwrite=True)
sample(options, log=lambda line: None)
shutil.copytree(out, out + '-first')
real = files.publish
def publish(tmp, path):
  real(tmp, path)
  if path.endswith('.wav'):
    os.kill(os.getpid(), signal.SIGKILL)
files.publish = publish
sample(SampleOptions(**{**options.__dict__, 'sampling': {'temp': 3.0}}), log=lambda line: None)
'''


def _hidden(folder):
  return sorted(name for name in os.listdir(folder) if name.startswith('.'))


def _units(folder):
  """{stem: (audio bytes or None, sidecar temp or None)} of an output folder."""
  units = {}
  for name in os.listdir(folder):
    stem, ext = os.path.splitext(name)
    if name.startswith('.'):
      continue
    audio, temp = units.get(stem, (None, None))
    if ext == '.wav':
      audio = open(os.path.join(folder, name), 'rb').read()
    else:
      temp = json.load(open(os.path.join(folder, name)))['decoding']['temp']
    units[stem] = (audio, temp)
  return units


def test_a_killed_overwrite_never_pairs_new_audio_with_an_old_sidecar(tiny_pipeline_folder, tmp_path):
  out = tmp_path / 'out'
  run = subprocess.run([sys.executable, '-c', _KILLED_RUN, str(tiny_pipeline_folder), str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
  assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
  first, killed = _units(str(out) + '-first'), _units(out)
  assert set(first) == set(killed) == {'calm-piano_0', 'fast-drums_0'}
  for stem, (audio, temp) in killed.items():
    if audio == first[stem][0]:
      assert temp in (1.0, None), stem  # the first run's audio: its own sidecar (or none)
    else:
      assert temp in (3.0, None), stem  # the killed run's audio: never the first run's sidecar
  assert killed['calm-piano_0'][0] != first['calm-piano_0'][0]  # the kill came after the new audio was in place
  assert _hidden(out), 'the kill should have left temporary files behind'
  logs = []
  sample(SampleOptions(prompts=PROMPTS, checkpoint=str(tiny_pipeline_folder), out=str(out), overwrite=True,
                       sampling={'temp': 3.0}), log=logs.append)
  assert any(line.startswith('removed ') and 'temporary file(s) of interrupted runs' in line for line in logs), logs
  assert _hidden(out) == []
  assert {temp for _, temp in _units(out).values()} == {3.0}


_HOLDER = '''
import sys, time
from magnet_jax.io import files
claim = files.Claim(sys.argv[1])
print('claimed', flush=True)
time.sleep(600)
'''


def test_two_processes_writing_the_same_names_collide_in_one_line(tiny_pipeline_folder, tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', _HOLDER, str(tmp_path / 'fast-drums_0.wav')], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'claimed'
    with pytest.raises(FileExistsError, match=rf'fast-drums_0.wav is being written by another process '
                                              rf'\(pid {holder.pid}\)') as error:
      sample(SampleOptions(prompts=PROMPTS, checkpoint=str(tiny_pipeline_folder), out=str(tmp_path)))
    assert runner._message('magnet-jax', error.value).count('\n') == 0
  finally:
    holder.kill()
    holder.wait()
  # nothing written, and the first name's claim was given back: only the dead holder's lock file is left, which
  # no longer claims the name and goes with the next run's clean-up
  assert os.listdir(tmp_path) == ['.fast-drums_0.wav.lock']
  (tmp_path / 'fast-drums_0.json').write_text('{}')
  with pytest.raises(FileExistsError, match='fast-drums_0.json already exists'):
    sample(SampleOptions(prompts=PROMPTS, checkpoint=str(tiny_pipeline_folder), out=str(tmp_path)))
  assert files.remove_stale_temporaries(str(tmp_path)) == [] and os.listdir(tmp_path) == ['fast-drums_0.json']


@pytest.fixture
def small_tmpfs(tmp_path):
  """A 64 KiB tmpfs, full but for 8 KiB."""
  with tmpfs(tmp_path / 'tmpfs', '64k') as folder:
    with open(folder / 'filler', 'wb', buffering=0) as f:
      try:
        while True:
          f.write(b'\0' * 4096)
      except OSError as e:
        assert e.errno == errno.ENOSPC
    os.truncate(folder / 'filler', os.path.getsize(folder / 'filler') - 8192)
    yield folder


def test_a_full_disk_is_one_line_naming_the_file(tiny_pipeline_folder, small_tmpfs):
  out = small_tmpfs / 'out'
  with pytest.raises(OSError, match=f'no space left on device writing {out}/calm-piano_0.wav') as error:
    sample(SampleOptions(prompts=PROMPTS[:1], checkpoint=str(tiny_pipeline_folder), out=str(out), duration=3.0),
           log=lambda line: None)
  assert error.value.errno == errno.ENOSPC
  assert runner._message('magnet-jax', error.value) == (
      f'magnet-jax: error: no space left on device writing {out}/calm-piano_0.wav')
  assert os.listdir(out) == []  # no temporary file, no claim left
