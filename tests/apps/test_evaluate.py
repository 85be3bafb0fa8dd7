"""python -m magnet_jax.apps.evaluate end to end on tiny folders, and its one-line errors."""
import dataclasses
import json
import os
import re

import numpy as np
import pytest
import soundfile

from magnet_jax.corpus.writer import make_clip
from magnet_jax.evaluation import musicnn, quality, registry
from magnet_jax.evaluation.metrics import EmbeddingStats
from tests.helpers import run_module


def _write_clips(folder, indices, rate=16000, seconds=3.2):
  os.makedirs(folder, exist_ok=True)
  for i in indices:
    soundfile.write(os.path.join(folder, f'clip_{i}.wav'), make_clip(0, i, rate, seconds).audio, rate)
  return str(folder)


def _run(*args):
  return run_module('magnet_jax.apps.evaluate', *args)


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
  root = tmp_path_factory.mktemp('eval')
  ref = _write_clips(root / 'ref', range(4))
  gen = _write_clips(root / 'gen', range(2, 6), rate=22050)  # another rate: resampled to 16 kHz; 2 names shared
  (root / 'gen' / 'broken.wav').write_bytes(b'RIFF nonsense')
  (root / 'empty').mkdir()
  return root, ref, gen


def test_end_to_end_report_and_cached_stats(folders):
  root, ref, gen = folders
  out = str(root / 'report.json')
  stats = str(root / 'ref.npz')
  code, stdout, stderr = _run(f'--generated={gen}', f'--reference={ref}', f'--out={out}',
                              f'--save-reference-stats={stats}', '--batch-size=8', '--metrics=fad,kad,fad_inf,kl',
                              '--bootstrap=30')
  assert code == 0, stderr
  report = json.load(open(out))
  assert report['generated_clips'] == 4 and report['generated_skipped'] == 1
  assert report['kl_mode'] == 'paired' and report['metrics']['kl'] >= 0 and report['metrics']['fad'] > 0
  assert '| fad | kad | fad_inf | kl | clips | skipped |' in stdout
  assert open(out[:-5] + '.md').read().startswith('| fad')
  assert set(report['intervals']) == {'fad', 'kad', 'fad_inf', 'kl'} and report['intervals']['fad_inf']['draws'] == 30
  assert report['fad_inf_fit']['subsets'] == 25 and len(report['fad_worst_clips']) == 4
  assert 'Largest per-clip FAD: ' in stdout
  # The cached statistics give the same FAD as the folder; a set against itself scores ~0 (FAD and paired KL).
  embedder = registry.get('musicnn').load(None, batch_size=8, progress=False)
  generated = quality.embed_folder(embedder, gen)
  cached = quality.report(generated, EmbeddingStats.load(stats, embedder.name), ('fad',))
  assert cached['metrics']['fad'] == pytest.approx(report['metrics']['fad'], abs=2e-4)
  itself = quality.report(generated, generated, ('fad', 'kl'))
  assert abs(itself['metrics']['fad']) < 1e-3 and abs(itself['metrics']['kl']) < 1e-3
  assert generated.embeddings.shape == (8, 200)  # 4 clips of 3.2 s: 2 patches each (one ends at the clip's end)
  np.testing.assert_allclose(generated.label_probs.sum(-1), 1.0, rtol=1e-5)


def test_bad_input_is_one_line(folders):
  root, _, _ = folders
  code, _, stderr = _run(f'--generated={root / "empty"}', f'--reference={root / "empty"}')
  assert code == 1 and 'Traceback' not in '\n'.join(stderr), stderr
  assert re.fullmatch(r'magnet_jax.apps.evaluate: error: no audio files \(.wav.*\) in .*empty', stderr[-1]), stderr


def test_bad_inputs(folders):
  """What the command reports as one line (ValueError / FileNotFoundError), checked in process."""
  root, _, gen = folders
  with pytest.raises(ValueError, match=r'no audio files \(.wav'):
    quality.list_audio(str(root / 'empty'))
  with pytest.raises(NotADirectoryError, match='no such folder'):
    quality.list_audio(str(root / 'missing'))
  with pytest.raises(FileNotFoundError, match='no reference statistics at'):
    EmbeddingStats.load(str(root / 'missing.npz'), musicnn.NAME)
  with pytest.raises(ValueError, match=r"unknown metric\(s\) \['bleu'\]"):
    quality.check_metrics(['fad', 'bleu'])
  other = EmbeddingStats(np.zeros(200), np.eye(200), 'vggish/1', 2)
  other.save(str(root / 'other.npz'))
  with pytest.raises(ValueError, match="computed with embedder 'vggish/1', this run uses 'musicnn-MTT_musicnn/1'"):
    EmbeddingStats.load(str(root / 'other.npz'), musicnn.NAME)
  embedded = quality.Embedded(['a', 'b'], np.zeros((3, 200)), np.full((2, 50), 0.02), 6.0, musicnn.NAME)
  with pytest.raises(ValueError, match="the reference was embedded with 'vggish/1', this run uses 'musicnn"):
    quality.report(embedded, other, ('fad',))
  with pytest.raises(ValueError, match='metrics kad and kl need a reference folder'):
    quality.report(embedded, embedded.stats(), ('kl',))


def test_roles_are_checked_before_anything_loads(folders, tmp_path):
  root, ref, gen = folders
  with pytest.raises(ValueError, match=r'clap needs --clap-folder PATH'):
    quality.choose_models(('fad', 'clap'))
  with pytest.raises(NotADirectoryError, match='--clap-folder: no such folder'):
    quality.choose_models(('clap',), clap_folder=str(tmp_path / 'nope'))
  with pytest.raises(ValueError, match='vggish needs --vggish-checkpoint PATH'):
    quality.choose_models(('fad',), embedder='vggish')
  with pytest.raises(FileNotFoundError, match='--vggish-checkpoint: no such file'):
    quality.choose_models(('fad',), embedder='vggish', vggish_checkpoint=str(tmp_path / 'v.pth'))
  with pytest.raises(ValueError, match='add --embedder vggish'):
    quality.choose_models(('fad',), vggish_checkpoint=str(tmp_path / 'v.pth'))
  with pytest.raises(ValueError, match='ast needs --ast-folder PATH'):
    quality.choose_models(('kl',), classifier='ast')
  with pytest.raises(ValueError, match='add --classifier ast'):
    quality.choose_models(('kl',), ast_folder=str(tmp_path))
  with pytest.raises(ValueError, match='--clap-folder is given but no metric needs clap'):
    quality.choose_models(('fad',), clap_folder=str(tmp_path))
  choice = quality.choose_models(('kl', 'clap'), embedder='vggish', classifier='ast', ast_folder=str(tmp_path),
                                 clap_folder=str(tmp_path))
  assert (choice.embedder, choice.classifier, choice.scorer) == (None, 'ast', 'clap')  # no fad: no VGGish
  assert choice.options == {'ast_folder': str(tmp_path), 'clap_folder': str(tmp_path)}
  with pytest.raises(ValueError, match="unknown model option 'bert_folder'"):
    quality.choose_models(('fad',), bert_folder=str(tmp_path))
  with pytest.raises(ValueError, match="unknown embedder 'openl3'; choose among encodec, musicnn, vggish"):
    quality.choose_models(('fad',), embedder='openl3')
  stats = str(root / 'other.npz')
  EmbeddingStats(np.zeros(200), np.eye(200), 'vggish/1', 2).save(stats)
  for args, message in [
      ((f'--generated={gen}', f'--reference={ref}', '--metrics=fad,clap'), 'clap needs --clap-folder PATH'),
      ((f'--generated={gen}', f'--reference-stats={stats}'), 'metrics kad and kl need --reference (a folder)'),
      ((f'--generated={gen}', f'--clap-folder={tmp_path}', '--metrics=clap'),
       'metric clap needs texts: none of the 5')]:
    code, _, stderr = _run(*args)
    assert code == 1 and 'Traceback' not in '\n'.join(stderr) and message in stderr[-1], (args, stderr)


class _FakeClap:
  """A CLAP scorer at 48 kHz: the score is the mean clip length in seconds, so the rate and the pairs are checked."""
  name = 'fake-clap/1'
  sample_rate = 48000

  def __init__(self):
    self.texts = []

  def similarities(self, clips, texts):
    self.texts.extend(texts)
    return np.array([len(audio) / self.sample_rate for _, audio in clips])


def test_clap_role_texts_and_report_columns(folders, tmp_path):
  """Texts from sidecars, else from a prompts file's names; files without text are counted and left out."""
  _, ref, _ = folders
  from magnet_jax.generation.prompts import Prompt
  gen = _write_clips(tmp_path / 'gen', range(3))
  (tmp_path / 'gen' / 'clip_0.json').write_text(json.dumps({'prompt': 'soft piano', 'seed': 0}))
  prompts = [Prompt('clip 1')]  # magnet-jax names it clip-1_0: not a file here, so clip_1 has no text
  assert quality.read_texts(quality.list_audio(gen), prompts) == {'clip_0': 'soft piano'}
  os.rename(os.path.join(gen, 'clip_2.wav'), os.path.join(gen, 'loud-drums_0.wav'))
  texts = quality.read_texts(quality.list_audio(gen), [Prompt('Loud drums!')])
  assert texts == {'clip_0': 'soft piano', 'loud-drums_0': 'Loud drums!'}
  embedder, clap = registry.get('musicnn').load(None, batch_size=8, progress=False), _FakeClap()
  models = quality.Models(embedder, embedder, clap)
  generated = quality.embed_folder(models, gen, texts)
  reference = quality.embed_folder(quality.Models(embedder, embedder), ref)
  assert clap.texts == ['soft piano', 'Loud drums!']  # sorted files: clip_0, clip_1 (no text), loud-drums_0
  assert generated.clap == {'model': 'fake-clap/1', 'score': pytest.approx(3.2), 'clips': 2, 'without_text': 1}
  result = quality.report(generated, reference, ('fad', 'kl', 'clap'))
  assert result['models'] == {'fad': embedder.name, 'kl': embedder.name, 'clap': 'fake-clap/1'}
  assert result['clap_clips'] == 2 and result['clap_without_text'] == 1 and result['metrics']['clap'] == 3.2
  assert quality.markdown_table(result).splitlines()[0] == (
      '| fad | kl | clap | clips | skipped | fad model | kl model | clap model |')
  only_clap = quality.embed_folder(quality.Models(scorer=clap), gen, texts)
  assert only_clap.embeddings is None and only_clap.label_probs is None
  assert quality.report(only_clap, None, ('clap',))['metrics'] == {'clap': 3.2}
  with pytest.raises(ValueError, match='none of the 3 files has one'):
    quality.embed_folder(quality.Models(scorer=clap), gen, {})
  with pytest.raises(ValueError, match=r"classified by one model, got 'musicnn-MTT_musicnn/1' \(generated\) and 'a/1'"):
    quality.report(generated, dataclasses.replace(reference, classifier='a/1'), ('kl',))


@pytest.mark.parametrize('content', ['nope', '[1, 2]'])
def test_a_sidecar_that_is_not_a_json_object_is_one_line(tmp_path, content):
  gen = _write_clips(tmp_path / 'gen', range(1))
  (tmp_path / 'gen' / 'clip_0.json').write_text(content)
  with pytest.raises(ValueError, match=r'clip_0\.json: not a JSON sidecar'):
    quality.read_texts(quality.list_audio(gen))


def test_prompts_file_never_overwrites_generated_files(folders, tmp_path):
  root, ref, gen = folders
  (tmp_path / 'p.txt').write_text('calm piano\n')
  before = {name: os.path.getmtime(os.path.join(gen, name)) for name in os.listdir(gen)}
  code, _, stderr = _run(f'--prompts_file={tmp_path / "p.txt"}', f'--generated={gen}', f'--reference={ref}')
  assert code == 1 and stderr[-1] == (f'magnet_jax.apps.evaluate: error: --generated {gen} already holds audio: '
                                      '--prompts_file writes into a new or empty folder (its files are never '
                                      'overwritten)'), stderr
  assert {name: os.path.getmtime(os.path.join(gen, name)) for name in os.listdir(gen)} == before
