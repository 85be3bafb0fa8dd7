"""The sampling command's controls: prompt schedules and negative prompts in the sidecar, best-of-N keeps the
argmax of its recorded scores, step progress, a cancel that leaves nothing of its batch, the loop flags' checks."""
import json
import threading

import pytest

from magnet_jax.audio import files as audio_io
from magnet_jax.evaluation import prompt_following  # noqa: F401 (registers the best-of scorers)
from magnet_jax.generation import pretrained
from magnet_jax.generation.prompts import Prompt
from magnet_jax.generation.sample_files import SampleOptions, check_options, sample
from magnet_jax.io.errors import Cancelled


def test_best_of_schedule_negative_progress_and_cancel(tiny_pipeline_folder, tmp_path):
  scheduled = Prompt.scheduled([(0, 'ambient pad drone'), (0.3, 'fast drum groove')])
  options = SampleOptions(prompts=(scheduled, Prompt('fast drums')), checkpoint=str(tiny_pipeline_folder),
                          out=str(tmp_path), duration=0.6, best_of=2, batch_size=2, negative='noise',
                          step_progress=True)
  logs, cancel = [], threading.Event()

  def log(line):
    logs.append(line)
    if line.startswith('  wrote'):  # the first batch is done: cancel the second at its first step
      cancel.set()

  with pytest.raises(Cancelled, match='after decoding step 1 of 10'):
    sample(options, log=log, cancel=cancel)
  (sidecar,) = tmp_path.glob('*.json')
  record = json.loads(sidecar.read_text())
  stem = f'0-ambient-pad-drone-0-3-fast-drum-groove_{record["seed"]}'  # named after the seed it keeps
  assert sorted(p.name for p in tmp_path.iterdir()) == [f'{stem}.json', f'{stem}.wav']
  assert '  step 20/20' in logs  # two windows (the change at 0.3 s regenerates from frame 15) of 10 steps
  assert record['schedule'] == [[0.0, 'ambient pad drone'], [0.3, 'fast drum groove']]
  assert record['negative_prompt'] == 'noise'
  best = record['best_of']
  assert best['seeds'] == [0, 1] and len(best['scores']) == 2
  assert best['chosen'] == max(range(2), key=best['scores'].__getitem__) and record['seed'] == best['chosen']
  pipeline = pretrained.load(tiny_pipeline_folder)  # the file is the chosen candidate, generated alone
  alone = pipeline.generate([scheduled.schedule, scheduled.schedule], 0.6, seed=[0, 1], negative='noise')
  written, _ = audio_io.read(str(tmp_path / f'{stem}.wav'))
  assert abs(written - alone[best['chosen']]).max() < 1e-5


@pytest.mark.parametrize('overrides, message', [
    ({'bpm': 120.0}, '--bpm and --bars go together'),
    ({'bpm': 120.0, 'bars': 4}, 'makes a generated loop'),
    ({'bpm': 120.0, 'bars': 0, 'loop': True}, 'bars >= 1'),
    ({'loop_count': 2}, '--loop-count must be >= 1 and needs --loop'),
    ({'best_of': 0}, 'best-of must be between 1 and 16'),
    ({'best_of': 17}, 'best-of must be between 1 and 16'),
    ({'scorer': 'clap', 'best_of': 2}, 'the clap scorer needs a local CLAP model folder'),
    ({'scorer': 'nope', 'best_of': 2}, "unknown best-of scorer 'nope'"),
])
def test_control_flags_are_checked_before_the_model_loads(overrides, message):
  with pytest.raises(ValueError, match=message):
    check_options(SampleOptions(prompts=(Prompt('x'),), **overrides))
