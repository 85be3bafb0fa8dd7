"""Released-folder loading and the whole text -> audio pipeline against the PyTorch one.

Fake released folders are built locally with random weights in the real layouts: a music variant (LM
`state_dict.bin`, `compression_state_dict.bin` pointing to facebook/encodec_32khz, whose transformers folder and
the t5-base folder lie beside) and a 16 kHz-style audio variant (full audiocraft codec, t5-large).
"""
import dataclasses
import os
import shutil

import jax
import numpy as np
import pytest

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')
from magnet_jax import decoding  # noqa: E402
from magnet_jax.generation import pretrained  # noqa: E402
from magnet_jax.io.errors import CheckpointError  # noqa: E402
from magnet_jax.models.config import MagnetConfig  # noqa: E402
from reference import audiocraft_lm, text  # noqa: E402
from reference.codec import audiocraft_xp_cfg, save_audiocraft_encodec, save_transformers_encodec  # noqa: E402
from tests.helpers import without  # noqa: E402

LM = MagnetConfig(dim=32, num_heads=4, num_layers=2, card=32, text_dim=64, segment_duration=1.0)
PROMPTS = ['calm acoustic guitar melody', 'an upbeat electronic track with a punchy kick drum']
AUDIO_TOL = 1e-4  # max abs difference of decoded audio, fp32


def _t5_states(t5_folder: str, descriptions: list[str]) -> dict[str, np.ndarray]:
  """transformers T5 states of each description (what audiocraft's T5Conditioner feeds the LM)."""
  tokenizer = transformers.T5Tokenizer.from_pretrained(t5_folder)
  model = transformers.T5EncoderModel.from_pretrained(t5_folder).eval()
  states = {}
  with torch.no_grad():
    for d in descriptions:
      ids = tokenizer([d], return_tensors='pt')
      states[d] = model(**ids).last_hidden_state[0].numpy()
  return states


@pytest.fixture(scope='module')
def music_folder(tmp_path_factory):
  folder = tmp_path_factory.mktemp('magnet-small-10secs')
  text.save_t5_folder(folder / 't5-base', d_model=LM.text_dim)
  codec = save_transformers_encodec(folder / 'encodec_32khz', sampling_rate=1600, upsampling_ratios=[8, 4],
                                    num_filters=4, hidden_size=8, codebook_size=LM.card, target_bandwidths=[2.0],
                                    num_lstm_layers=1, pad_mode='reflect', use_conv_shortcut=False)
  torch.save({'pretrained': 'facebook/encodec_32khz', 'xp.cfg': '', 'version': '1.3.0'},
             folder / 'compression_state_dict.bin')
  lm = audiocraft_lm.build_magnet_lm(LM, _t5_states(str(folder / 't5-base'), PROMPTS), seed=3)
  audiocraft_lm.save_released(lm, LM, str(folder / 'state_dict.bin'), sample_rate=1600)
  return folder, lm, codec


def test_music_variant_loads_and_matches_pytorch_end_to_end(music_folder):
  """text -> T5 -> LM (greedy) -> codec: identical tokens, audio within 1e-4 of the PyTorch pipeline."""
  folder, lm, codec = music_folder
  pipeline = pretrained.load(folder)
  assert pipeline.lm_config == LM and pipeline.sample_rate == 1600 and pipeline.text_encoder.dim == 64
  attributes = [audiocraft_lm.conditioners.ConditioningAttributes(text={'description': d}) for d in PROMPTS]
  expected_codes = lm.generate(conditions=attributes, max_gen_len=48, use_sampling=False, temp=3.0, top_p=0.9,
                               max_cfg_coef=10.0, min_cfg_coef=1.0, decoding_steps=[20, 10, 10, 10])
  with torch.no_grad():
    expected_audio = codec.decode(expected_codes[None], [None]).audio_values.numpy()

  # 0.96 s: 48 frames, within the 50-frame segment that audiocraft builds its restricted-attention masks for
  codes = pipeline.generate_tokens(PROMPTS, duration=0.96, use_sampling=False)
  np.testing.assert_array_equal(codes, expected_codes.numpy())
  assert codes.shape == (2, 4, 48)
  audio = pipeline.generate(PROMPTS, duration=0.96, use_sampling=False)
  n = min(audio.shape[-1], expected_audio.shape[-1])
  assert audio.shape == (2, 1, 48 * 32)
  assert np.abs(audio[..., :n] - expected_audio[..., :n]).max() <= AUDIO_TOL


def test_batch_bucketing_and_seeds(music_folder):
  pipeline = pretrained.load(music_folder[0])
  three = pipeline.generate_tokens(PROMPTS + ['slow piano'], duration=0.6, seed=1)
  assert three.shape == (3, 4, 30)
  again = pipeline.generate_tokens(PROMPTS + ['slow piano'], duration=0.6, seed=1)
  np.testing.assert_array_equal(three, again)
  assert not np.array_equal(three, pipeline.generate_tokens(PROMPTS + ['slow piano'], duration=0.6, seed=2))
  # bucketing (batch 3 -> 4 with a null row, text padded to a multiple of 8) is exact: same greedy tokens as
  # decoding the 3 prompts unpadded
  prompts = PROMPTS + ['slow piano']
  cond, cond_mask = pipeline.text_encoder.encode(prompts, pad_to=1)
  exact = decoding.generate(pipeline.lm_params, cond, cond_mask, jax.random.key(0), lm_config=pipeline.lm_config,
                            decoding=pipeline.decoding_with(use_sampling=False), length=30)
  np.testing.assert_array_equal(pipeline.generate_tokens(prompts, duration=0.6, use_sampling=False), exact)


def test_audio_variant_16khz_style_matches_pytorch(tmp_path):
  """The audio-magnet layout (audiocraft's own codec, t5-large found beside the folder): identical greedy tokens
  to audiocraft's LM, and the codec's audio within 1e-4 of audiocraft's decode of them."""
  folder = tmp_path / 'audio-magnet-small'
  folder.mkdir()
  text.save_t5_folder(tmp_path / 't5-large', d_model=LM.text_dim)  # beside the folder, not inside
  xp = audiocraft_xp_cfg(800, ratios=[4, 4], n_filters=4, dimension=8, rvq={'n_q': 4, 'bins': LM.card,
                                                                            'kmeans_iters': 2})
  codec = save_audiocraft_encodec(folder / 'compression_state_dict.bin', xp)
  prompts = ['a dog barks']
  lm = audiocraft_lm.build_magnet_lm(LM, _t5_states(str(tmp_path / 't5-large'), prompts), seed=0)
  audiocraft_lm.save_released(lm, LM, str(folder / 'state_dict.bin'), t5_name='t5-large', sample_rate=800)
  pipeline = pretrained.load(folder)
  assert pipeline.sample_rate == 800 and pipeline.codec_config.pad_mode == 'constant'
  attributes = [audiocraft_lm.conditioners.ConditioningAttributes(text={'description': d}) for d in prompts]
  expected = lm.generate(conditions=attributes, max_gen_len=30, use_sampling=False, temp=3.0, top_p=0.9,
                         max_cfg_coef=10.0, min_cfg_coef=1.0, decoding_steps=[20, 10, 10, 10]).numpy()
  codes = pipeline.generate_tokens(prompts, duration=0.6, use_sampling=False)
  np.testing.assert_array_equal(codes, expected)
  with torch.no_grad():
    expected_audio = codec.decode(torch.as_tensor(codes, dtype=torch.long)).numpy()
  audio = pipeline.decode(codes)
  assert audio.shape == expected_audio.shape == (1, 1, 30 * 16)
  assert np.abs(audio - expected_audio).max() <= AUDIO_TOL


def test_exported_round_trip_needs_no_torch(music_folder, tmp_path):
  import subprocess
  import sys
  folder = music_folder[0]
  pipeline = pretrained.load(folder)
  shutil.copytree(folder / 't5-base', tmp_path / 'export' / 't5')
  pretrained.save_pipeline(tmp_path / 'export', pipeline, 't5:t5', source='test')
  expected = pipeline.generate_tokens(PROMPTS, duration=0.6, use_sampling=False)
  code = (without('torch', 'transformers') +
          "import numpy as np\nfrom magnet_jax import pretrained\n"
          f"p = pretrained.load({str(tmp_path / 'export')!r})\n"
          f"np.save({str(tmp_path / 'codes.npy')!r}, p.generate_tokens({PROMPTS!r}, duration=0.6, use_sampling=False))")
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  np.testing.assert_array_equal(np.load(tmp_path / 'codes.npy'), expected)


def test_hybrid_variant_decodes_as_hybrid_magnet(music_folder, tmp_path):
  """A released folder whose xp.cfg has the delay pattern (hybrid-magnet-*) loads into a Hybrid-MAGNeT pipeline."""
  folder, lm, _ = music_folder
  hybrid_folder = _copy(folder, tmp_path)
  hybrid_lm = dataclasses.replace(LM, codebooks_pattern='delay')
  audiocraft_lm.save_released(lm, hybrid_lm, str(hybrid_folder / 'state_dict.bin'), sample_rate=1600)
  pipeline = pretrained.load(hybrid_folder)
  assert pipeline.lm_config == hybrid_lm and pipeline.decoder.hybrid.prefix_length == LM.sequence_length // 2
  codes = pipeline.generate_tokens(PROMPTS, seed=1)
  assert codes.shape == (2, LM.n_q, 51) and codes.min() >= 0 and codes.max() < LM.card  # 1 s in whole spans
  np.testing.assert_array_equal(pipeline.generate_tokens(PROMPTS, seed=1), codes)


def _copy(folder, tmp_path, drop=()):
  target = tmp_path / 'copy' / folder.name
  shutil.copytree(folder, target, ignore=lambda d, names: [n for n in names if n in drop])
  return target


def test_bad_folders_are_one_clear_error(music_folder, tmp_path):
  folder = music_folder[0]
  with pytest.raises(FileNotFoundError, match='checkpoint folder not found'):
    pretrained.load(tmp_path / 'nope')
  with pytest.raises(FileNotFoundError, match='t5-base text encoder folder was not found'):
    pretrained.load(_copy(folder, tmp_path / 'a', drop=('t5-base',)))
  with pytest.raises(CheckpointError, match="pretrained codec 'facebook/encodec_32khz'"):
    pretrained.load(_copy(folder, tmp_path / 'b', drop=('encodec_32khz',)))
  with pytest.raises(CheckpointError, match='compression_state_dict.bin is missing'):
    pretrained.load(_copy(folder, tmp_path / 'c', drop=('compression_state_dict.bin',)))
  wrong_rate = _copy(folder, tmp_path / 'd')
  lm = audiocraft_lm.build_magnet_lm(LM, {}, seed=0)
  audiocraft_lm.save_released(lm, LM, str(wrong_rate / 'state_dict.bin'), sample_rate=32000)
  with pytest.raises(CheckpointError, match='sample_rate=32000 but the codec runs at 1600'):
    pretrained.load(wrong_rate)
  wrong_card = _copy(folder, tmp_path / 'e')
  small_card = MagnetConfig(**{**LM.__dict__, 'card': 16})
  audiocraft_lm.save_released(audiocraft_lm.build_magnet_lm(small_card, {}, seed=0), small_card,
                              str(wrong_card / 'state_dict.bin'), sample_rate=1600)
  with pytest.raises(ValueError, match='codec has 32 codes per codebook but the LM has card=16'):
    pretrained.load(wrong_card)
  truncated = _copy(folder, tmp_path / 'f')
  data = (truncated / 'state_dict.bin').read_bytes()
  (truncated / 'state_dict.bin').write_bytes(data[:len(data) // 2])
  with pytest.raises(CheckpointError, match='truncated'):
    pretrained.load(truncated)
  with pytest.raises(ValueError, match='non-empty list'):
    pretrained.load(folder).generate([])
  assert os.path.isdir(folder)  # untouched
