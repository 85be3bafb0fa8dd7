"""The sampling command against untrusted input: non-finite audio prompts, unbounded or non-finite durations and
decoding floats, empty prompts are one line before the model loads; --max-duration and --unconditional."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from magnet_jax.generation import prompt_schedule
from magnet_jax.generation.prompts import Prompt, expand, read_prompts_file
from magnet_jax.generation.sample_files import SampleOptions, sample
from tests.helpers import REPO_ROOT as REPO


def _fails_before_loading(tmp_path, error, message, **overrides):
  """The run stops with `message` while the checkpoint (which does not exist) is still unread."""
  options = SampleOptions(**{'prompts': (Prompt('calm piano'),), 'checkpoint': str(tmp_path / 'no-such-checkpoint'),
                             'out': str(tmp_path / 'out'), **overrides})
  with pytest.raises(error, match=message):
    sample(options, log=lambda line: None)


def test_non_finite_audio_prompts_fail_before_loading(tmp_path):
  for name, bad in (('nan.wav', np.nan), ('inf.wav', np.inf)):
    audio = np.zeros(3200, np.float32)
    audio[2400] = bad
    soundfile.write(tmp_path / name, audio, 1600, subtype='FLOAT')
    for mode in ({}, {'infill': (0.2, 0.4)}, {'loop': True}):
      _fails_before_loading(tmp_path, ValueError, f'{name} holds non-finite samples .* the first at 1.500 s',
                            audio_prompt=str(tmp_path / name), **mode)


def test_durations_are_finite_and_capped_before_loading(tmp_path):
  for duration in (float('inf'), float('nan'), 1e6):
    _fails_before_loading(tmp_path, ValueError, r'duration must be > 0 seconds and at most 3600 s', duration=duration)
  _fails_before_loading(tmp_path, ValueError, '--max-duration must be > 0', max_duration=float('nan'))
  _fails_before_loading(tmp_path, FileNotFoundError, 'checkpoint folder not found', duration=7200.0,
                        max_duration=7200.0)  # the cap is configurable: this run gets as far as loading
  (tmp_path / 'p.jsonl').write_text('{"prompt": "a", "duration": 5000}\n')
  _fails_before_loading(tmp_path, ValueError, r"prompt 'a': duration must be > 0 seconds and at most 3600 s, got 5000",
                        prompts=tuple(read_prompts_file(tmp_path / 'p.jsonl')))
  for value in ('Infinity', 'NaN', '-Infinity', 'true'):
    (tmp_path / 'p.jsonl').write_text(f'{{"prompt": "a", "duration": {value}}}\n')
    with pytest.raises(ValueError, match=r'p.jsonl:1: "duration" must be a finite number of seconds > 0'):
      read_prompts_file(tmp_path / 'p.jsonl')
  _fails_before_loading(tmp_path, ValueError, 'overlap must be a finite number', overlap=float('inf'))


def test_empty_prompts_are_refused_and_unconditional_is_explicit(tmp_path, tiny_pipeline_folder):
  for text in ('', '   '):
    with pytest.raises(ValueError, match='empty prompt .* pass --unconditional'):
      expand([Prompt('a'), Prompt(text)], 0, 1, None)
  (tmp_path / 'p.jsonl').write_text('{"description": ""}\n')
  _fails_before_loading(tmp_path, ValueError, 'empty prompt', prompts=tuple(read_prompts_file(tmp_path / 'p.jsonl')))
  records = sample(SampleOptions(prompts=(Prompt(None), Prompt('calm piano')), checkpoint=str(tiny_pipeline_folder),
                                 out=str(tmp_path / 'out'), duration=0.4), log=lambda line: None)
  assert [os.path.basename(r['path']) for r in records] == ['unconditional_0.wav', 'calm-piano_0.wav']
  sidecar = json.loads((tmp_path / 'out' / 'unconditional_0.json').read_text())
  assert sidecar['prompt'] is None and sidecar['batch_prompts'] == [None, 'calm piano']


def test_command_line_errors_are_one_line_before_loading(tmp_path):
  """The real entry point: non-finite or out-of-range decoding values (an old underscore spelling warns, then
  counts), non-finite durations, and empty prompts."""
  finite = 'must be a finite number in [0, 100], got'
  cases = [(['--prompt', 'a', '--max-cfg-coef', 'nan'], f'decoding.max_cfg_coef {finite} nan'),
           (['--prompt', 'a', '--temp', 'inf'], f'decoding.temp {finite} inf'),
           (['--prompt', 'a', '--top_p', '2'], 'decoding.top_p must be a number in [0, 1], got 2.0'),
           (['--prompt', 'a', '--duration', 'inf'], 'duration must be > 0 seconds and at most 3600 s'),
           (['--prompt', ''], "empty prompt '': it would generate unconditionally")]
  for args, message in cases:
    run = subprocess.run([sys.executable, 'sample.py', *args, '--checkpoint', str(tmp_path / 'nope'),
                          '--out', str(tmp_path / 'out')], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1].startswith(f'sample.py: error: {message}'), \
        run.stderr[-2000:]
    assert ('sample.py: warning: --top_p is deprecated; use --top-p' in run.stderr) == ('--top_p' in args)


def test_loops_best_of_negative_prompts_and_schedules_are_checked_before_loading(tmp_path):
  loop = {'loop': True}
  _fails_before_loading(tmp_path, ValueError, r'--bpm 0.001 --bars 1 make a 240000 s loop: .* at most --max-duration',
                        bpm=0.001, bars=1, **loop)
  _fails_before_loading(tmp_path, ValueError, r'--bars 100000000 make a 2.4e\+08 s loop', bpm=100.0,
                        bars=100_000_000, **loop)
  _fails_before_loading(tmp_path, ValueError, 'make a 0 s loop: it must be finite', bpm=float('inf'), bars=1, **loop)
  _fails_before_loading(tmp_path, ValueError, '--max-duration must be > 0 seconds and finite',
                        max_duration=float('inf'))
  _fails_before_loading(tmp_path, ValueError, 'best-of must be between 1 and 16 candidates, got 100000', best_of=100000)
  _fails_before_loading(tmp_path, ValueError, "empty --negative-prompt ''", negative='')
  with pytest.raises(ValueError, match="empty negative prompt ' '"):
    expand([Prompt('a', negative=' ')], 0, 1, None)
  for entries, message in [(((0, 'a'), (0.5, '')), r"empty text \(0.5: ''\)"),
                           (((0, 'a'), (float('inf'), 'b')), 'got inf'), (((0, 'a'), (float('nan'), 'b')), 'got nan'),
                           (((0, 'a'), (1e308, 'b')), r'got 1e\+308')]:
    with pytest.raises(ValueError, match=message):
      prompt_schedule.entries(entries)
