"""The sampling command: prompt files, output names, files and sidecars, reproducibility, errors before any
compute, loudness normalisation, and the real entry points (sample.py, magnet-jax) without torch."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from magnet_jax.audio import loudness
from magnet_jax.generation import pretrained
from magnet_jax.generation.prompts import Prompt, expand, read_prompts_file, slug
from magnet_jax.generation.sample_files import SampleOptions, sample
from tests.helpers import REPO_ROOT as REPO

PROMPTS = (Prompt('calm piano'), Prompt('Fast drums!'))


def _options(folder, **overrides) -> SampleOptions:
  return SampleOptions(**{'prompts': PROMPTS, 'checkpoint': str(folder), **overrides})


def test_prompt_files_and_collision_free_names(tmp_path):
  (tmp_path / 'p.txt').write_text('# a comment\ncalm piano\n\n  fast drums  \n')
  assert read_prompts_file(tmp_path / 'p.txt') == [Prompt('calm piano'), Prompt('fast drums')]
  (tmp_path / 'p.jsonl').write_text('{"description": "a", "seed": 5}\n\n{"prompt": "b", "duration": 1.5}\n')
  assert read_prompts_file(tmp_path / 'p.jsonl') == [Prompt('a', 5), Prompt('b', None, 1.5)]
  for content, message in [('{"prompt": "a"}\n{"prompt": ', 'p.jsonl:2: not valid JSON'),
                           ('{"prompt": "a", "seed": -1}', 'p.jsonl:1: "seed" must be an integer'),
                           ('{"prompt": "a", "duration": 0}', '"duration" must be a finite number of seconds > 0'),
                           ('{"text": "a"}', 'needs a "description"')]:
    (tmp_path / 'p.jsonl').write_text(content)
    with pytest.raises(ValueError, match=message):
      read_prompts_file(tmp_path / 'p.jsonl')
  (tmp_path / 'p.csv').write_text('a,b\n')
  with pytest.raises(ValueError, match=r'expected a .txt \(one prompt per line\) or .jsonl file'):
    read_prompts_file(tmp_path / 'p.csv')
  requests = expand([Prompt('Calm piano!'), Prompt('calm  piano', seed=9), Prompt('CALM piano')], 3, 2, 2.0)
  assert [r.stem for r in requests] == ['calm-piano_3', 'calm-piano_4', 'calm-piano_9', 'calm-piano_10',
                                        'calm-piano_3-2', 'calm-piano_4-2']
  assert [r.seed for r in requests] == [3, 4, 9, 10, 3, 4] and requests[0].duration == 2.0
  assert slug('¡¿!') == 'untitled' and len(slug('word ' * 40)) <= 60


def test_same_seed_same_bytes_long_form_files_and_sidecars(tiny_pipeline_folder, tmp_path):
  logs = []
  options = _options(tiny_pipeline_folder, out=str(tmp_path), seed=7, num_samples=2, duration=1.33, preset='fast',
                     sampling={'temp': 2.0})
  records = sample(options, log=logs.append)
  names = sorted(os.listdir(tmp_path))
  assert names == [f'{stem}_{seed}.{ext}' for stem in ('calm-piano', 'fast-drums') for seed in (7, 8)
                   for ext in ('json', 'wav')]
  first = {name: (tmp_path / name).read_bytes() for name in names if name.endswith('.wav')}
  assert any(line.startswith('compiling (first run only') for line in logs)
  assert sum('window 4/4' in line for line in logs) == 1  # 66.5 -> 67 frames: four 30-frame windows, one batch
  assert [record['path'] for record in records] == [str(tmp_path / name) for name in names if name.endswith('wav')]
  info = soundfile.info(tmp_path / 'calm-piano_8.wav')
  assert info.samplerate == 1600 and info.frames == 2128 and info.subtype == 'PCM_24'  # 1.33 s to the sample
  sidecar = json.loads((tmp_path / 'calm-piano_8.json').read_text())
  assert sidecar['prompt'] == 'calm piano' and sidecar['seed'] == 8 and sidecar['mode'] == 'text'
  assert sidecar['decoding']['decoding_steps'] == [4, 2, 2, 2] and sidecar['decoding']['temp'] == 2.0
  assert sidecar['preset'] == 'fast' and sidecar['audio_s'] == 1.33 and sidecar['duration_requested_s'] == 1.33
  assert sidecar['checkpoint'] == str(tiny_pipeline_folder) and sidecar['versions']['jax']
  assert set(sidecar['timings']) == {'load_s', 'compile_s', 'generate_s'}

  sample(dataclasses.replace(options, overwrite=True), log=logs.append)  # the same command again
  assert {name: (tmp_path / name).read_bytes() for name in first} == first
  assert first['calm-piano_7.wav'] != first['calm-piano_8.wav']


def test_bad_inputs_fail_before_the_model_loads(tmp_path):
  """Every error names its flag, and comes before loading (the checkpoint does not even exist)."""
  wav = tmp_path / 'take.wav'
  soundfile.write(wav, np.zeros(1600), 1600)  # 1 s
  (tmp_path / 'noise.wav').write_bytes(b'not audio')
  (tmp_path / 'a-file').write_text('')
  (tmp_path / 'out').mkdir()
  (tmp_path / 'out' / 'calm-piano_0.wav').write_bytes(b'')
  cases = [({'duration': 0.0}, ValueError, 'duration must be > 0'),
           ({'duration': -2.0}, ValueError, 'duration must be > 0'),
           ({'prompts': ()}, ValueError, 'no prompts'),
           ({'audio_prompt': str(tmp_path / 'noise.wav')}, ValueError, 'cannot read audio file'),
           ({'audio_prompt': str(tmp_path / 'missing.wav')}, FileNotFoundError, 'audio file not found'),
           ({'audio_prompt': str(wav), 'infill': (0.5, 1.5)}, ValueError, r'infill 0.5:1.5 is outside the audio'),
           ({'audio_prompt': str(wav), 'infill': (0.6, 0.2)}, ValueError, 'outside the audio .* or empty'),
           ({'infill': (0.1, 0.2)}, ValueError, 'need --audio-prompt'),
           ({'audio_prompt': str(wav), 'duration': 0.5}, ValueError, 'must exceed the audio'),
           ({'audio_prompt': str(wav), 'infill': (0.1, 0.2), 'duration': 2.0}, ValueError, 'does not apply'),
           ({'loop': True, 'outpaint': 'left', 'audio_prompt': str(wav)}, ValueError, 'exclude each other'),
           ({'out': str(tmp_path / 'a-file' / 'sub')}, PermissionError, 'is not a writable folder'),
           ({'out': str(tmp_path / 'out')}, FileExistsError, 'calm-piano_0.wav already exists .* --overwrite')]
  for overrides, error, message in cases:
    with pytest.raises(error, match=message):
      sample(_options(tmp_path / 'no-such-checkpoint', **{'out': tmp_path / 'fresh', **overrides}),
             log=lambda line: None)
  with pytest.raises(FileNotFoundError, match='checkpoint folder not found'):  # ... and only then the checkpoint
    sample(_options(tmp_path / 'no-such-checkpoint', out=tmp_path / 'fresh'), log=lambda line: None)
  assert os.listdir(tmp_path / 'fresh') == []


def test_missing_embedded_default_says_how_to_build_it(tmp_path, monkeypatch):
  monkeypatch.setattr(pretrained, 'EMBEDDED_DIR', str(tmp_path / 'default'))
  with pytest.raises(FileNotFoundError, match='embedded default model is not built yet.*apps.default_model --workdir'):
    pretrained.load()


def test_loudness_normalisation(tmp_path):
  rate = 16000
  tone = 0.05 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)[None].astype(np.float32)
  louder, info = loudness.normalize(tone, rate)
  assert info['method'] == 'bs1770' and info['loudness_lufs'] < -20
  assert info['gain_db'] == pytest.approx(loudness.TARGET_LUFS - info['loudness_lufs'], abs=1e-3)
  pyloudnorm = pytest.importorskip('pyloudnorm')
  assert pyloudnorm.Meter(rate).integrated_loudness(louder[0].astype(np.float64)) == pytest.approx(-14.0, abs=0.05)
  spiky = (tone / 5).copy()
  spiky[:, ::4000] = 0.5  # quiet, with clicks: reaching the target would push them past -1 dBFS
  limited, info = loudness.normalize(spiky, rate)
  assert info['gain_db'] < loudness.TARGET_LUFS - info['loudness_lufs']
  assert np.abs(limited).max() == pytest.approx(10 ** (loudness.PEAK_CEILING_DB / 20), rel=1e-4)
  short, info = loudness.normalize(tone[:, :1000], rate)  # under one 400 ms block: no integrated loudness
  assert info['method'] == 'peak' and np.abs(short).max() == pytest.approx(10 ** (-1 / 20), rel=1e-4)
  silence = np.zeros((1, rate), np.float32)
  assert loudness.normalize(silence, rate)[1]['method'] == 'none (silence)'


def test_entry_points_one_line_errors_and_torch_free_generation(tiny_pipeline_folder, tmp_path):
  """sample.py and the installed magnet-jax run the same main; generation imports neither torch nor
  transformers, and fills the persistent compilation cache."""
  bad = subprocess.run([sys.executable, 'sample.py', '--prompt', 'a', '--infill', '3:x', '--out', str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  assert bad.returncode == 1
  expected = "sample.py: error: --infill expects START:END in seconds (e.g. 4:6.5), got '3:x'"
  assert bad.stderr.strip().splitlines()[-1] == expected
  if shutil.which('magnet-jax'):
    bad = subprocess.run(['magnet-jax', '--prompt', 'a', '--top-p', '2', '--out', str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith('magnet-jax: error: decoding needs')
  out, cache = tmp_path / 'out', tmp_path / 'cache'
  # torch and transformers made unimportable by an import hook (sys.modules[...] = None would also hide them, but
  # scipy, under pyloudnorm, mistakes a None entry for an imported torch).
  code = ("import atexit, sys\n"
          "class Blocked:\n"
          "  def find_spec(self, name, path=None, target=None):\n"
          "    if name.partition('.')[0] in ('torch', 'transformers'):\n"
          "      raise ImportError(f'{name} is blocked')\n"
          "sys.meta_path.insert(0, Blocked())\n"
          "atexit.register(lambda: print('imported:', sorted({'torch', 'transformers'} & set(sys.modules))))\n"
          f"sys.argv = ['magnet-jax', '--checkpoint', {str(tiny_pipeline_folder)!r}, '--prompt', 'calm piano', "
          f"'--out', {str(out)!r}, '--format', 'flac', '--normalize', '--loop']\n"
          "from magnet_jax.apps.sample import main\nmain()")
  env = {**os.environ, 'MAGNET_JAX_CACHE': str(cache), 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0'}
  env.pop('JAX_COMPILATION_CACHE_DIR', None)  # the test run's cache (tests/conftest.py) would take this one's place
  run = subprocess.run([sys.executable, '-c', code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  assert f'wrote {out / "calm-piano_0.flac"}' in run.stdout and 'compiling (first run only' in run.stdout
  assert 'imported: []' in run.stdout
  assert soundfile.info(out / 'calm-piano_0.flac').frames == 30 * 32
  assert json.loads((out / 'calm-piano_0.json').read_text())['mode'] == 'loop'
  assert os.listdir(cache)
