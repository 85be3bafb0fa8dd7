"""CLAP in JAX against transformers' ClapModel / ClapFeatureExtractor / RobertaTokenizer with a tiny random model."""
import json
import os
import shutil

import numpy as np
import pytest

from magnet_jax.evaluation import clap
from magnet_jax.io.errors import CheckpointError

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')
tokenizers = pytest.importorskip('tokenizers')
from reference import evaluation_models  # noqa: E402
from reference.evaluation_models import CLAP_MAX_S as MAX_S  # noqa: E402

SR = clap.SAMPLE_RATE
TEXTS = ['warm lo-fi piano with vinyl crackle', 'Heavy METAL guitars, fast drums!', 'a',
         'ambient pads ' * 40]  # the last one is truncated to 77 tokens


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  """(folder, torch ClapModel, ClapFeatureExtractor, RobertaTokenizer) of a tiny random CLAP saved to disk."""
  folder = str(tmp_path_factory.mktemp('clap') / 'tiny_clap')
  return (folder, *evaluation_models.clap_folder(folder))


@pytest.fixture(scope='module')
def scorer(tiny):
  return clap.ClapScorer(tiny[0], batch_size=3, progress=False)


def _clips() -> list[tuple[str, np.ndarray]]:
  """Clips shorter than, equal to and longer than the model's 1 s, with tones, noise and silence."""
  rng = np.random.default_rng(0)
  t = np.arange(3 * SR) / SR
  tone = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
  noise = (0.05 * rng.normal(size=3 * SR)).astype(np.float32)
  return [('short', tone[:int(0.7 * SR)]), ('exact', noise[:MAX_S * SR]), ('long', tone + noise),
          ('quiet', 1e-3 * noise[:int(0.3 * SR)]), ('half_silent', np.concatenate([tone[:SR // 4], np.zeros(SR // 2)]))]


def _reference_features(extractor, clips) -> np.ndarray:
  """transformers' features [B, T, M]; long clips are given cut to 1 s (transformers would crop at random)."""
  audio = [a[:MAX_S * SR].astype(np.float64) for _, a in clips]
  return extractor(audio, sampling_rate=SR, return_tensors='np')['input_features'][:, 0]


def test_feature_extractor_matches_transformers(tiny, scorer):
  clips = _clips()
  expected = _reference_features(tiny[2], clips)
  got = np.stack([clap.features(a, scorer.config.features) for _, a in clips])
  assert got.shape == expected.shape == (len(clips), 101, 8)
  # dB values from -100 (the floor) to about +15; transformers rounds its STFT to complex64 (measured: 2e-6 dB).
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_tokenizer_matches_transformers(tiny, scorer, tmp_path):
  expected = tiny[3](TEXTS, padding='max_length', truncation=True, max_length=77, return_tensors='np')
  ids, mask = scorer.tokenizer(TEXTS, pad_to=77)
  np.testing.assert_array_equal(ids, expected['input_ids'])
  np.testing.assert_array_equal(mask, expected['attention_mask'].astype(bool))
  assert mask[-1].all() and ids[-1, -1] == 2  # truncated to 77, ending with </s>
  # The same vocabulary from tokenizer.json alone.
  tiny[3].backend_tokenizer.save(str(tmp_path / 'tokenizer.json'))
  shutil.copy(os.path.join(tiny[0], 'tokenizer_config.json'), tmp_path)
  from magnet_jax.text.tokenizer import Tokenizer
  np.testing.assert_array_equal(Tokenizer.from_folder(tmp_path, max_length=77)(TEXTS, pad_to=77)[0], ids)


def test_audio_embeddings_match_transformers(tiny, scorer):
  clips = _clips()
  with torch.no_grad():
    out = tiny[1].get_audio_features(input_features=torch.from_numpy(_reference_features(tiny[2], clips))[:, None])
  expected = out.pooler_output.numpy()
  got = scorer.embed_audio(clips)
  assert got.shape == (len(clips), 24)
  np.testing.assert_allclose(np.linalg.norm(got, axis=-1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_text_embeddings_match_transformers(tiny, scorer):
  tokens = tiny[3](TEXTS, padding=True, truncation=True, max_length=77, return_tensors='pt')
  with torch.no_grad():
    expected = tiny[1].get_text_features(**tokens).pooler_output.numpy()
  got = scorer.embed_text(TEXTS)
  assert got.shape == (len(TEXTS), 24)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_score_matches_torch_and_is_deterministic(tiny, scorer):
  clips, texts = _clips()[:4], TEXTS
  with torch.no_grad():
    audio = tiny[1].get_audio_features(
        input_features=torch.from_numpy(_reference_features(tiny[2], clips))[:, None]).pooler_output
    text = tiny[1].get_text_features(**tiny[3](texts, padding=True, truncation=True, max_length=77,
                                               return_tensors='pt')).pooler_output
  per_clip = torch.nn.functional.cosine_similarity(audio, text, dim=1, eps=1e-8).numpy()
  np.testing.assert_allclose(scorer.similarities(clips, texts), per_clip, atol=1e-5)  # the bootstrap's values
  score = scorer.score(clips, texts)
  assert score == pytest.approx(float(per_clip.mean()), abs=1e-5)
  assert scorer.score(clips, texts) == score
  # A clip's embedding does not depend on its batch (the last batch's padding rows included).
  alone = np.concatenate([scorer.embed_audio([clip]) for clip in clips])
  np.testing.assert_allclose(alone, scorer.embed_audio(clips), atol=1e-6)
  assert scorer.name == 'clap-tiny_clap/1'


def test_bad_input_fails_in_one_line(tiny, scorer, tmp_path):
  with pytest.raises(FileNotFoundError, match='CLAP model folder not found'):
    clap.ClapScorer(str(tmp_path / 'missing'))
  for name in ('config.json', 'preprocessor_config.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json'):
    shutil.copy(os.path.join(tiny[0], name), tmp_path)
  with pytest.raises(CheckpointError, match='no model.safetensors or pytorch_model.bin'):
    clap.ClapScorer(str(tmp_path))
  with open(tmp_path / 'config.json') as f:
    config = json.load(f)
  config['audio_config']['enable_fusion'] = True
  with open(tmp_path / 'config.json', 'w') as f:
    json.dump(config, f)
  with pytest.raises(ValueError, match='fused CLAP models'):
    clap.ClapScorer(str(tmp_path))
  with pytest.raises(ValueError, match='no texts'):
    scorer.embed_text([])
  with pytest.raises(ValueError, match=r'empty: CLAP embeds non-empty mono audio \[N\], got shape \(0,\)'):
    scorer.embed_audio([('empty', np.zeros(0, np.float32))])
  with pytest.raises(ValueError, match=r'stereo: .* got shape \(2, 100\)'):
    scorer.embed_audio([('stereo', np.zeros((2, 100), np.float32))])
  with pytest.raises(ValueError, match='one text per clip'):
    scorer.score(_clips()[:2], TEXTS[:1])


def test_best_of_scorer_is_the_clip_text_cosine(tiny, scorer):
  """`--best-of-scorer clap:FOLDER`: [B, C, N] stereo at 32 kHz, averaged and resampled to 48 kHz, scored against
  each text; a clip without text scores 0; a missing folder is one line."""
  from magnet_jax.audio.convert import convert
  from magnet_jax.evaluation import prompt_following  # noqa: F401 (registers 'clap')
  from magnet_jax.generation import best_of
  rng = np.random.default_rng(3)
  audio = rng.uniform(-0.5, 0.5, size=(3, 2, 32000)).astype(np.float32)
  texts = [TEXTS[0], None, TEXTS[1]]
  scores = best_of.scorer(f'clap:{tiny[0]}')(texts, audio, 32000)
  clips = [(str(i), convert(clip, 32000, SR, 1)[0]) for i, clip in enumerate(audio)]
  embeddings = scorer.embed_audio(clips)
  expected = [float(embeddings[0] @ scorer.embed_text([TEXTS[0]])[0]), 0.0,
              float(embeddings[2] @ scorer.embed_text([TEXTS[1]])[0])]
  np.testing.assert_allclose(scores, expected, atol=1e-6)
  assert best_of.scorer(f'clap:{tiny[0]}') is best_of.scorer(f'clap:{tiny[0]}')  # loaded once
  with pytest.raises(FileNotFoundError, match='not found'):
    best_of.scorer('clap:/no/such/clap')
