"""The MusicCaps recipe end to end on a tiny synthetic MusicCaps (the embedded default model, musicnn), resuming,
and its one-line errors."""
import csv
import json
import os
import shutil

import pytest
import soundfile

from magnet_jax.corpus.writer import make_clip
from magnet_jax.evaluation import musiccaps, quality
from magnet_jax.generation import pretrained
from tests.helpers import run_module

CAPTIONS = [('yt-a', 'A calm solo piano melody.'), ('yt-b', 'Fast electronic drums with a deep bass.'),
            ('yt-missing', 'A string quartet.'), ('yt-c', 'A slow acoustic guitar ballad.')]


def _write_csv(path, rows, columns=('ytid', 'start_s', 'end_s', 'audioset_positive_labels', 'caption')):
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    for ytid, caption in rows:
      writer.writerow([{'ytid': ytid, 'caption': caption, 'start_s': 30, 'end_s': 40}.get(c, '') for c in columns])
  return str(path)


def _run(*args):
  return run_module('magnet_jax.apps.musiccaps', *args)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
  """A CSV of 4 captions and reference clips (3.2 s, 16 kHz) for 3 of them."""
  root = tmp_path_factory.mktemp('musiccaps')
  (root / 'audio').mkdir()
  for i, (ytid, _) in enumerate(CAPTIONS):
    if ytid != 'yt-missing':
      soundfile.write(root / 'audio' / f'{ytid}.wav', make_clip(0, i, 16000, 3.2).audio, 16000)
  return root, _write_csv(root / 'musiccaps-public.csv', CAPTIONS), str(root / 'audio')


@pytest.fixture(scope='module')
def run(dataset):
  root, captions, audio = dataset
  out = root / 'run'
  code, stdout, stderr = _run(f'--captions={captions}', f'--audio-dir={audio}', f'--out={out}', '--duration=1',
                              '--embed-batch-size=8', '--set=decoding_steps=[2,1,1,1]', '--bootstrap=50')
  assert code == 0, '\n'.join(stderr[-20:])
  return out, stdout


def test_end_to_end_table(run):
  out, stdout = run
  report = json.load(open(out / 'musiccaps.json'))
  assert report['captions'] == 3 and report['missing_references'] == 1 and report['generated_now'] == 3
  assert report['generated_clips'] == 3 and report['kl_mode'] == 'paired'  # generated files renamed to their ytid
  assert report['metrics']['fad'] > 0 and report['metrics']['kl'] >= 0 and report['seconds_per_sample'] > 0
  name = quality.registry.get('musicnn').stats_name(None)
  assert report['models'] == {'fad': name, 'kad': name, 'kl': name}  # 3 embeddings of 1 s clips: FAD-inf skipped
  assert report['fad_inf_fit'] == {'skipped': 'FAD-inf needs at least 4 embeddings, the set has 3'}
  for metric, value in report['metrics'].items():
    found = report['intervals'][metric]
    assert found['low'] <= value <= found['high'] and found['draws'] == 50, metric
  assert report['checkpoint'] == [pretrained.EMBEDDED_DIR] and report['decoding'][0]['decoding_steps'] == [2, 1, 1, 1]
  header = f'| FAD ({name}) | KAD ({name}) | KL ({name}) | s / sample | clips |'
  assert header in stdout and open(out / 'musiccaps.md').read().startswith(header)
  names = sorted(os.listdir(out / 'generated'))
  assert [n for n in names if n.endswith('.wav')] == ['a-calm-solo-piano-melody_0.wav',
                                                      'a-slow-acoustic-guitar-ballad_3.wav',
                                                      'fast-electronic-drums-with-a-deep-bass_1.wav']
  sidecar = json.load(open(out / 'generated' / 'a-calm-solo-piano-melody_0.json'))
  assert sidecar['prompt'] == 'A calm solo piano melody.' and sidecar['seed'] == 0


def test_resume_generates_only_what_is_missing(dataset, run, tmp_path):
  """A copy of the run without one sidecar: only that caption (with its seed) is generated again."""
  _, captions, audio = dataset
  out, _ = run
  copy = tmp_path / 'run'
  shutil.copytree(out, copy)
  sidecar = copy / 'generated' / 'a-slow-acoustic-guitar-ballad_3.json'
  kept = sidecar.read_bytes()
  sidecar.unlink()
  calls = []
  def generate(prompts, folder):
    calls.append((prompts, folder))
    sidecar.write_bytes(kept)
  rows, missing = musiccaps.read_captions(captions, audio)
  choice = quality.choose_models(musiccaps.METRICS)
  result = musiccaps.evaluate(rows, str(copy), generate, choice, missing=missing, batch_size=8, log=lambda _: None)
  assert [(p.text, p.seed) for p in calls[0][0]] == [('A slow acoustic guitar ballad.', 3)] and len(calls) == 1
  assert calls[0][1] == str(copy / 'generated') and result['generated_now'] == 1
  before = json.load(open(out / 'musiccaps.json'))
  assert result['metrics'] == before['metrics'] and result['seconds_per_sample'] == before['seconds_per_sample']


def test_paper_table_with_vggish_ast_and_clap(dataset, run, tmp_path):
  """The paper's columns from the three models (random weights, saved as their originals are): the run's files are
  scored again, none generated."""
  pytest.importorskip('torch')
  from reference import evaluation_models
  _, captions, audio = dataset
  out, _ = run
  copy = tmp_path / 'run'
  shutil.copytree(out, copy)
  evaluation_models.vggish_checkpoint(tmp_path / 'vggish.pth')
  evaluation_models.ast_folder(tmp_path / 'ast')
  evaluation_models.clap_folder(tmp_path / 'clap')
  code, stdout, stderr = _run(f'--captions={captions}', f'--audio-dir={audio}', f'--out={copy}', '--duration=1',
                              '--embedder=vggish', f'--vggish-checkpoint={tmp_path / "vggish.pth"}', '--classifier=ast',
                              f'--ast-folder={tmp_path / "ast"}', '--metrics=fad,kl,clap', '--bootstrap=20',
                              f'--clap-folder={tmp_path / "clap"}', '--set=decoding_steps=[2,1,1,1]')
  assert code == 0, '\n'.join(stderr[-20:])
  report = json.load(open(copy / 'musiccaps.json'))
  assert report['generated_now'] == 0 and report['generated_clips'] == 3 and report['kl_mode'] == 'paired'
  assert report['models'] == {'fad': 'vggish/1', 'kl': 'ast-ast/1', 'clap': 'clap-clap/1'}
  metrics = report['metrics']
  assert metrics['fad'] > 0 and metrics['kl'] >= 0 and -1 <= metrics['clap'] <= 1 and report['clap_clips'] == 3
  assert metrics['fad'] != json.load(open(out / 'musiccaps.json'))['metrics']['fad']  # not musicnn's
  header = '| FAD (vggish/1) | KL (ast-ast/1) | CLAP (clap-clap/1) | s / sample | clips |'
  assert header in stdout


def test_bad_input(dataset, tmp_path):
  root, captions, audio = dataset
  code, _, stderr = _run(f'--captions={_write_csv(tmp_path / "c.csv", CAPTIONS, ("ytid", "text"))}',
                         f'--audio-dir={audio}', f'--out={tmp_path / "out"}')
  assert code == 1 and 'Traceback' not in '\n'.join(stderr), stderr
  assert stderr[-1].startswith('magnet_jax.apps.musiccaps: error: ') and 'has no column caption (columns: ytid, text)' \
      in stderr[-1], stderr
  assert not (tmp_path / 'out').exists()
  with pytest.raises(ValueError, match='has no captions'):
    musiccaps.read_captions(_write_csv(tmp_path / 'empty.csv', []), audio)
  (tmp_path / 'blank.csv').write_text('')
  with pytest.raises(ValueError, match=r'has no column ytid, caption \(columns: none\)'):
    musiccaps.read_captions(str(tmp_path / 'blank.csv'), audio)
  with pytest.raises(NotADirectoryError, match='no such audio folder'):
    musiccaps.read_captions(captions, str(tmp_path / 'missing'))
  with pytest.raises(FileNotFoundError, match='no MusicCaps CSV'):
    musiccaps.read_captions(str(tmp_path / 'missing.csv'), audio)
  (tmp_path / 'noaudio').mkdir()
  with pytest.raises(ValueError, match='none of the 4 captions .* has its reference clip'):
    musiccaps.read_captions(captions, str(tmp_path / 'noaudio'))
  rows, missing = musiccaps.read_captions(captions, audio, limit=2)
  assert [r.ytid for r in rows] == ['yt-a', 'yt-b'] and missing == ['yt-missing']
  assert [r.index for r in musiccaps.read_captions(captions, audio)[0]] == [0, 1, 3]
