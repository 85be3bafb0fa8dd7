"""Text encoders: T5 / BERT parity with transformers, tokenizers, audiocraft's empty-prompt handling, bad inputs.

The references (torch, transformers, audiocraft) come from the `torch` extra; tests that need them are skipped
without it. Tolerances: last hidden states within 1e-4 absolute in float32; token ids exactly equal.
"""
import os
import shutil
import types

import jax
import numpy as np
import pytest

from magnet_jax.io.errors import CheckpointError
from magnet_jax.text import BertEncoder, T5Encoder, TextEncoder, Tokenizer, load_bert, load_t5, mean_pool, minilm_folder
from magnet_jax.text.t5 import relative_position_buckets

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')
from reference import text as reference_text  # noqa: E402

ATOL = 1e-4
PROMPTS = [
    'An upbeat electronic track with synth pads and a punchy kick drum',
    None,
    'calm  acoustic guitar, 90 bpm',
    '',
    'Jazzy saxophone solo; café ambience. Naïve résumé!',
]
TRICKY = PROMPTS[:1] + PROMPTS[2:] + [
    '  leading and trailing spaces  ', 'tabs\tand\nnewlines', 'literal </s> and <extra_id_0> tokens',
    'ﬁ ligature, full-width ＡＢＣ, circled ① and emoji 🎵', 'UPPER lower MiXeD', '中文字符 and 日本語', '']


def _t5_reference(model, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
  encoder = model.encoder if isinstance(model, transformers.T5ForConditionalGeneration) else model
  with torch.no_grad():
    out = encoder(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask).long())
  return out.last_hidden_state.numpy()


def _padded_batch(vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Rows of lengths 7, 3, 1 (an empty prompt: `</s>` with its mask row zeroed, as audiocraft feeds it), 25."""
  rng = np.random.default_rng(0)
  lengths = [7, 3, 1, 25]
  ids = np.zeros((len(lengths), max(lengths)), np.int32)
  mask = np.zeros(ids.shape, bool)
  for row, length in enumerate(lengths):
    ids[row, :length] = np.append(rng.integers(3, vocab_size, length - 1), 1)
    mask[row, :length] = True
  mask[2] = False
  return ids, mask


@pytest.fixture(scope='module')
def sp_folder(tmp_path_factory):
  """A tiny SentencePiece unigram model saved as a T5 folder with only spiece.model (no T5 tokenizer offline)."""
  pytest.importorskip('sentencepiece')
  folder = tmp_path_factory.mktemp('t5_spiece')
  reference_text.write_sentencepiece(folder)
  return folder


@pytest.fixture(scope='module')
def t5_folder(tmp_path_factory):
  """A random relu T5EncoderModel (t5-base style) with the tiny tokenizer (tokenizer.json), saved like the hub's."""
  folder = tmp_path_factory.mktemp('t5_relu')
  return folder, reference_text.save_t5_folder(folder)


@pytest.fixture(scope='module')
def minilm():
  return TextEncoder.minilm()


def test_relative_position_buckets_match_transformers():
  attention = transformers.models.t5.modeling_t5.T5Attention
  for buckets, distance in ((32, 128), (32, 20), (64, 256)):
    expected = attention._relative_position_bucket(torch.arange(-300, 301), True, buckets, distance).numpy()
    got = relative_position_buckets(301, buckets, distance)[0]  # row 0 holds offsets 0..300
    np.testing.assert_array_equal(got, expected[300:])
    np.testing.assert_array_equal(relative_position_buckets(301, buckets, distance)[-1], expected[:301])


@pytest.mark.parametrize('feed_forward_proj, full', [('relu', False), ('gated-gelu', True)])
def test_t5_matches_transformers(tmp_path, feed_forward_proj, full):
  """relu: T5EncoderModel (t5-base); gated-gelu: a full T5ForConditionalGeneration whose decoder is ignored."""
  model = reference_text.t5_model(feed_forward_proj, full=full)
  model.save_pretrained(tmp_path)
  config, params = load_t5(tmp_path)
  assert config.is_gated_act == full
  ids, mask = _padded_batch(config.vocab_size)
  got = np.asarray(jax.jit(T5Encoder(config).apply)({'params': params}, ids, mask))
  expected = _t5_reference(model, ids, mask)
  assert got.shape == expected.shape == (4, 25, 64)
  assert np.abs(got - expected).max() <= ATOL
  assert np.abs(expected[2]).max() > 0.1  # the all-masked row is real output, compared like the others


def test_t5_loads_pytorch_bin(tmp_path, t5_folder):
  folder, model = t5_folder
  shutil.copy(folder / 'config.json', tmp_path)
  torch.save(model.state_dict(), tmp_path / 'pytorch_model.bin')
  _, from_bin = load_t5(tmp_path)
  _, from_safetensors = load_t5(folder)
  jax.tree.map(np.testing.assert_array_equal, from_bin, from_safetensors)


@pytest.mark.parametrize('source', ['spiece.model', 'tokenizer.json'])
def test_t5_tokenizer_matches_transformers(sp_folder, t5_folder, source):
  reference = transformers.T5Tokenizer.from_pretrained(sp_folder)
  folder = sp_folder if source == 'spiece.model' else t5_folder[0]
  ids, mask = Tokenizer.from_folder(folder)(TRICKY)
  expected = reference(TRICKY, padding=True, return_tensors='np')
  np.testing.assert_array_equal(ids, expected['input_ids'])
  np.testing.assert_array_equal(mask, expected['attention_mask'].astype(bool))
  assert (ids == 1).sum() >= len(TRICKY)  # `</s>` appended (and the literal one kept special)


def test_t5_text_encoder_matches_audiocraft_conditioner(t5_folder):
  """audiocraft's own T5Conditioner.tokenize (None/"" rows zeroed, padding=True) feeding transformers' T5."""
  from reference.stubs import install

  install()
  from audiocraft.modules.conditioners import T5Conditioner

  folder, model = t5_folder
  conditioner = types.SimpleNamespace(t5_tokenizer=transformers.T5Tokenizer.from_pretrained(folder),
                                      normalize_text=False, word_dropout=0.0, training=False, device='cpu')
  inputs = T5Conditioner.tokenize(conditioner, PROMPTS)
  with torch.no_grad():
    expected = model(**inputs).last_hidden_state.numpy()

  encoder = TextEncoder.from_t5_folder(folder)
  states, mask = encoder.encode(PROMPTS)
  np.testing.assert_array_equal(np.asarray(mask), inputs['attention_mask'].numpy().astype(bool))
  assert states.dtype == np.float32 and states.shape == expected.shape
  assert np.abs(np.asarray(states) - expected).max() <= ATOL
  assert not np.asarray(mask)[[1, 3]].any()

  padded, padded_mask = encoder.encode(PROMPTS, pad_to=16)
  assert padded.shape[1] % 16 == 0 and padded.shape[1] >= states.shape[1]
  np.testing.assert_array_equal(np.asarray(padded_mask)[:, :mask.shape[1]], mask)
  valid = np.asarray(mask)
  np.testing.assert_allclose(np.asarray(padded)[:, :mask.shape[1]][valid], np.asarray(states)[valid], atol=1e-5)


def test_minilm_tokenizer_matches_transformers(minilm):
  reference = transformers.AutoTokenizer.from_pretrained(minilm_folder())
  texts = TRICKY + [' '.join(['word'] * 300)]
  ids, mask = minilm.tokenizer(texts)
  expected = reference(texts, padding=True, truncation=True, max_length=256, return_tensors='np')
  assert minilm.tokenizer.max_length == 256 and ids.shape == (len(texts), 256)
  np.testing.assert_array_equal(ids, expected['input_ids'])
  np.testing.assert_array_equal(mask, expected['attention_mask'].astype(bool))


def test_minilm_matches_transformers(minilm):
  """Real packaged weights; the None prompt is [CLS] [SEP] with an all-False mask, fed like T5's empty prompts.

  The reference runs eager attention: its SDPA path gives an all-masked row a different, backend-defined output
  (T5's SDPA path and both eager paths attend uniformly, as we do).
  """
  texts = ['A cheerful pop song with bright synths', None, 'Dark ambient drone', 'Fast metal riff, double kick drums']
  reference = transformers.BertModel.from_pretrained(minilm_folder(), attn_implementation='eager').eval()
  states, mask = minilm.encode(texts)
  ids, mask_np = minilm.tokenize(texts)
  assert not mask_np[1].any() and list(ids[1, :2]) == [101, 102]
  with torch.no_grad():
    expected = reference(input_ids=torch.from_numpy(ids).long(),
                         attention_mask=torch.from_numpy(mask_np).long()).last_hidden_state.numpy()
  assert states.shape == expected.shape and states.shape[-1] == minilm.dim == 384
  assert np.abs(np.asarray(states) - expected).max() <= ATOL
  weights = mask_np.astype(np.float32)[..., None]
  pooled = (expected * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
  np.testing.assert_allclose(np.asarray(mean_pool(states, mask)), pooled, atol=ATOL)
  assert np.abs(pooled[0]).max() > 0.01 and not np.asarray(mean_pool(states, mask))[1].any()


def test_bert_random_config_matches_transformers(tmp_path):
  torch.manual_seed(0)
  config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=64, max_position_embeddings=40)
  model = transformers.BertModel(config).eval()
  reference_text.randomize_norms(model, torch.Generator().manual_seed(1))
  model.save_pretrained(tmp_path)
  bert_config, params = load_bert(tmp_path)
  ids, mask = _padded_batch(config.vocab_size)
  mask[2, 0] = True  # BERT always has [CLS] [SEP]; padded rows only
  got = np.asarray(jax.jit(BertEncoder(bert_config).apply)({'params': params}, ids, mask))
  with torch.no_grad():
    expected = model(input_ids=torch.from_numpy(ids).long(),
                     attention_mask=torch.from_numpy(mask).long()).last_hidden_state.numpy()
  assert np.abs(got - expected).max() <= ATOL


def test_missing_folder_is_one_clear_error(tmp_path):
  missing = tmp_path / 'nope'
  for load in (load_t5, load_bert, TextEncoder.from_t5_folder, TextEncoder.from_bert_folder, Tokenizer.from_folder):
    with pytest.raises(FileNotFoundError, match='text model folder not found: .*nope'):
      load(missing)


@pytest.mark.parametrize('weights', ['model.safetensors', 'pytorch_model.bin'])
def test_truncated_weights_raise_checkpoint_error(tmp_path, t5_folder, weights):
  folder, model = t5_folder
  shutil.copy(folder / 'config.json', tmp_path)
  if weights == 'model.safetensors':
    shutil.copy(folder / weights, tmp_path)
  else:
    torch.save(model.state_dict(), tmp_path / weights)
  path = tmp_path / weights
  path.write_bytes(path.read_bytes()[:os.path.getsize(path) // 2])
  with pytest.raises(CheckpointError, match=weights):
    load_t5(tmp_path)


def test_unknown_and_missing_keys_are_named(tmp_path, t5_folder):
  from safetensors.numpy import load_file, save_file

  folder, _ = t5_folder
  shutil.copy(folder / 'config.json', tmp_path)
  state = load_file(folder / 'model.safetensors')
  save_file({**state, 'encoder.block.0.layer.0.SelfAttention.extra.weight': np.zeros(2, np.float32)},
            tmp_path / 'model.safetensors')
  with pytest.raises(CheckpointError, match='encoder.block.0.layer.0.SelfAttention.extra.weight'):
    load_t5(tmp_path)
  del state['encoder.block.1.layer.1.DenseReluDense.wo.weight']
  save_file(state, tmp_path / 'model.safetensors')
  with pytest.raises(CheckpointError, match='encoder.block.1.layer.1.DenseReluDense.wo.weight. is missing'):
    load_t5(tmp_path)


def test_empty_prompt_list_is_rejected(t5_folder):
  with pytest.raises(ValueError, match='at least one prompt'):
    TextEncoder.from_t5_folder(t5_folder[0]).encode([])
