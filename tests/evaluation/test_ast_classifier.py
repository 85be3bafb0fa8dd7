"""AST in JAX against transformers' ASTFeatureExtractor and ASTForAudioClassification, on a small random model."""
import json
import shutil

import jax
import numpy as np
import pytest

from magnet_jax.evaluation import ast_classifier
from magnet_jax.io.errors import CheckpointError
from tests.helpers import harmonic_notes

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')
from reference import evaluation_models  # noqa: E402
from reference.evaluation_models import AST_LABELS as LABELS  # noqa: E402
from reference.evaluation_models import AST_MAX_LENGTH as MAX_LENGTH  # noqa: E402


def _audio(seconds: float, seed: int) -> np.ndarray:
  """Harmonic notes over noise, loud enough that few mel bins hit the log floor."""
  return harmonic_notes(seconds, ast_classifier.SAMPLE_RATE, seed, noise=0.05, spacing=0.3, max_decay=10, level=0.2)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """(folder, torch model, feature extractor) of evaluation_models.ast_folder."""
  folder = tmp_path_factory.mktemp('ast') / 'tiny-ast'
  return (folder, *evaluation_models.ast_folder(folder))


@pytest.fixture(scope='module')
def classifier(reference):
  return ast_classifier.AstClassifier(str(reference[0]), batch_size=3, progress=False)


def _torch_logits(model, spec: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    return model(torch.from_numpy(spec)).logits.numpy()


def test_config_and_name(classifier):
  assert classifier.labels == LABELS
  assert classifier.name == 'ast-tiny-ast/1'
  assert (classifier.config.mean, classifier.config.std, classifier.config.grid) == (-3.0, 4.0, (5, 11))


@pytest.mark.parametrize('seconds', [0.02, 0.6, 1.0, 1.7])  # no frame, padded, 98 frames + 2 padded, cut
def test_front_end_matches_feature_extractor(reference, classifier, seconds):
  """Our float64 Kaldi filterbank vs the extractor's numpy path (float64 with a complex64 spectrum), to 1e-5."""
  audio = _audio(seconds, seed=1)
  expected = reference[2](audio, sampling_rate=ast_classifier.SAMPLE_RATE, return_tensors='np')['input_values'][0]
  got = ast_classifier.features(audio, classifier.config)
  assert got.shape == expected.shape == (MAX_LENGTH, 64)
  np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_logits_match_torch(reference, classifier):
  """Same inputs into transformers' model and ours (a partial last batch included): logits to 1e-5 relative."""
  spec = np.stack([ast_classifier.features(_audio(s, seed), classifier.config)
                   for seed, s in enumerate((0.5, 1.0, 1.3, 2.0))])
  expected = _torch_logits(reference[1], spec)
  got = classifier.logits(spec)
  assert got.shape == (4, len(LABELS)) and expected.std() > 0.1
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_label_probs_average_segments_end_to_end(reference, classifier):
  """A 2.6 s clip is three 1 s segments (the last 0.6 s), each classified from the extractor's features by the
  torch model; a 2.1 s clip drops its 0.1 s tail; a clip under 0.15 s keeps its only segment."""
  long, tail, short = _audio(2.6, seed=3), _audio(2.1, seed=4), _audio(0.1, seed=5)
  step, extra = MAX_LENGTH * ast_classifier.HOP, ast_classifier.FRAME - ast_classifier.HOP
  expected = []
  for audio, starts in ((long, (0, step, 2 * step)), (tail, (0, step)), (short, (0,))):
    pieces = [audio[s:s + step + extra] for s in starts]
    spec = reference[2](pieces, sampling_rate=ast_classifier.SAMPLE_RATE, return_tensors='np')['input_values']
    probs = torch.softmax(torch.from_numpy(_torch_logits(reference[1], spec)).double(), -1).numpy()
    expected.append(probs.mean(0))
  got = classifier.label_probs([('long', long), ('tail', tail), ('short', short)])
  assert got.shape == (3, len(LABELS))
  np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-9)
  np.testing.assert_allclose(got, np.stack(expected), atol=1e-5)


def test_segment_frames_are_the_clip_frames():
  audio = _audio(2.5, seed=6)
  pieces = ast_classifier.segments(audio, MAX_LENGTH)
  assert [len(p) for p in pieces] == [16240, 16240, 8000]
  whole = ast_classifier.fbank(audio, 64)
  np.testing.assert_array_equal(np.concatenate([ast_classifier.fbank(p, 64) for p in pieces]), whole)


def test_deterministic_and_independent_of_batching(reference, classifier):
  clips = [(str(i), _audio(s, seed=10 + i)) for i, s in enumerate((1.2, 0.4, 3.0, 0.9))]
  first = classifier.label_probs(clips)
  np.testing.assert_array_equal(first, classifier.label_probs(clips))
  alone = np.concatenate([classifier.label_probs([clip]) for clip in clips])
  np.testing.assert_allclose(alone, first, atol=1e-6)


def test_pytorch_bin_folder(reference, classifier, tmp_path):
  """The same weights as a pytorch_model.bin (read without torch) give the same parameters."""
  import safetensors.torch
  folder = tmp_path / 'bin'
  folder.mkdir()
  shutil.copy(reference[0] / 'config.json', folder)
  shutil.copy(reference[0] / 'preprocessor_config.json', folder)
  torch.save(safetensors.torch.load_file(reference[0] / 'model.safetensors'), folder / 'pytorch_model.bin')
  config, params = ast_classifier.load(folder)
  assert config == classifier.config
  jax.tree.map(np.testing.assert_array_equal, params, classifier.params)


def _one_line(error: pytest.ExceptionInfo) -> str:
  message = str(error.value)
  assert '\n' not in message
  return message


def test_bad_folders(reference, tmp_path):
  with pytest.raises(FileNotFoundError) as e:
    ast_classifier.AstClassifier(str(tmp_path / 'nope'))
  assert _one_line(e).startswith('AST model folder not found')
  shutil.copy(reference[0] / 'config.json', tmp_path)
  with pytest.raises(CheckpointError) as e:
    ast_classifier.AstClassifier(str(tmp_path))
  assert _one_line(e).startswith('no model.safetensors or pytorch_model.bin')
  (tmp_path / 'config.json').write_text(json.dumps({'model_type': 'bert', 'architectures': ['BertModel']}))
  with pytest.raises(ValueError) as e:
    ast_classifier.AstClassifier(str(tmp_path))
  assert _one_line(e).startswith('not an AST classifier config')
  config = json.loads((reference[0] / 'config.json').read_text())
  (tmp_path / 'config.json').write_text(json.dumps({**config, 'architectures': ['ASTModel']}))
  with pytest.raises(ValueError, match='not an AST classifier config'):
    ast_classifier.AstClassifier(str(tmp_path))
