"""Untrusted requests to the pipeline: window planning in linear time, non-finite durations, decoding floats and
audio refused, soundfile's [N, C] and int16 arrays, an exported folder whose weights disagree with its config, and
infilling a long prompt touching only the audio around the edit (bit for bit as before on short audio).

Pipeline: random weights, T = 30-frame window (`tiny_pipeline_folder`), 1.6 kHz codec, hop 32, 50 Hz.
"""
import json
import logging
import math
import shutil
import signal

import numpy as np
import pytest
import soundfile

from magnet_jax.audio import files as audio_io
from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import pretrained, windows
from magnet_jax.generation.prompts import check_seeds
from magnet_jax.io.errors import CheckpointError


@pytest.fixture(scope='module')
def pipeline(tiny_pipeline_folder):
  return pretrained.load(tiny_pipeline_folder)


def _plan_reference(known, window, overlap):
  """The plan's definition, frame by frame (the former quadratic implementation)."""
  known, starts, total = np.array(known, bool), [], len(known)
  while not known.all():
    first = int(np.argmin(known))
    rest = known[first:]
    run = int(np.argmax(rest)) if rest.any() else total - first
    before = (window - run) // 2 if run <= window - overlap else overlap
    start = min(max(first - before, 0), total - window)
    starts.append(start)
    known[start:start + window] = True
  return starts


def test_plan_matches_its_definition_on_random_masks():
  rng = np.random.default_rng(5)
  for _ in range(500):
    total = int(rng.integers(1, 120))
    window = int(rng.integers(1, total + 1))
    overlap = int(rng.integers(0, window))
    known = rng.random(total) < rng.random()
    assert windows.plan(known, window, overlap) == _plan_reference(known, window, overlap)
    mirrored = _plan_reference(known[::-1], window, overlap)
    assert windows.plan(known, window, overlap, reverse=True) == [total - window - s for s in mirrored]


def test_planning_a_huge_duration_does_not_hang():
  """4e5 s at 50 Hz (2e7 frames, 10 s windows): linear planning takes about a second; the quadratic re-scan took
  minutes (a hang guard with a wide margin, not a speed goal: see benchmarks/hardening.py)."""
  def hang(signum, frame):
    raise TimeoutError('windows.plan did not finish in 60 s')
  previous = signal.signal(signal.SIGALRM, hang)
  signal.alarm(60)
  try:
    starts = windows.plan(np.zeros(20_000_000, bool), 500, 250)
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
  assert len(starts) == 79_999 and starts[-1] == 20_000_000 - 500


def test_non_finite_durations_and_decoding_floats_are_refused(pipeline):
  for duration in (math.inf, math.nan, -1.0):
    with pytest.raises(ValueError, match='duration must be a finite number of seconds > 0'):
      pipeline.generate(['a'], duration=duration)
  for field in ('temp', 'top_p', 'max_cfg_coef', 'min_cfg_coef', 'rescorer_weight', 'rescorer_cfg_coef'):
    for value in (math.inf, math.nan):
      with pytest.raises(ValueError, match=f'decoding.{field} must be a finite number'):
        DecodingConfig(**{field: value})
  with pytest.raises(ValueError, match='max_cfg_coef must be a finite number'):
    pipeline.generate(['a'], max_cfg_coef=math.nan)
  for seed in (1.5, [0.5], [1, 2]):
    with pytest.raises(ValueError, match=r'seeds must be 1 integers in \[0, 2\*\*31\)'):
      pipeline.generate(['a'], seed=seed)
  assert check_seeds(3, 2).tolist() == [3, 4]


def test_non_finite_audio_prompts_are_refused(pipeline):
  rate = pipeline.sample_rate
  for bad in (np.nan, np.inf):
    audio = np.zeros((1, rate), np.float32)
    audio[0, 100] = bad
    with pytest.raises(ValueError, match='non-finite samples'):
      pipeline.generate_continuation(audio, rate, ['a'], duration=1.2)
    with pytest.raises(ValueError, match='non-finite samples'):
      pipeline.infill(audio, rate, ['a'], 0.2, 0.4)


def test_soundfile_layout_and_integer_pcm(pipeline, tmp_path):
  rate = pipeline.sample_rate
  mono = np.random.default_rng(0).uniform(-0.5, 0.5, (1, rate)).astype(np.float32)
  expected = pipeline.prepare_audio(mono, rate, 1)
  np.testing.assert_array_equal(pipeline.prepare_audio(mono.T, rate, 1), expected)  # [N, C] as soundfile gives it
  stereo = np.concatenate([mono, mono])
  np.testing.assert_array_equal(pipeline.prepare_audio(stereo.T, rate, 1), expected)
  pcm = np.round(mono * 32768).astype(np.int16)
  np.testing.assert_allclose(pipeline.prepare_audio(pcm, rate, 1), expected, atol=1 / 32768)
  soundfile.write(tmp_path / 'take.wav', pcm.T, rate, subtype='PCM_16')
  np.testing.assert_array_equal(pipeline.prepare_audio(pcm.T, rate, 1), audio_io.read(tmp_path / 'take.wav')[0][None])
  with pytest.raises(ValueError, match=r'audio of shape \(1, 40, 12\) is ambiguous: pass channels first'):
    pipeline.prepare_audio(np.zeros((40, 12), np.float32), rate, 1)
  with pytest.raises(ValueError, match='float .* or signed integer PCM, got uint8'):
    pipeline.prepare_audio(np.zeros((1, 100), np.uint8), rate, 1)


def test_truncated_wav_is_read_with_a_warning(tmp_path, caplog):
  soundfile.write(tmp_path / 'full.wav', np.zeros(1600, np.float32), 1600, subtype='PCM_16')
  data = (tmp_path / 'full.wav').read_bytes()
  (tmp_path / 'cut.wav').write_bytes(data[:len(data) // 2])
  with caplog.at_level(logging.WARNING):
    audio, _ = audio_io.read(tmp_path / 'full.wav')
    assert audio.shape == (1, 1600) and not caplog.records
    audio, _ = audio_io.read(tmp_path / 'cut.wav')
  assert audio.shape[1] < 1600
  assert any('cut.wav is truncated: its header promises 3200 bytes of samples' in r.getMessage()
             for r in caplog.records)


def test_prompts_over_the_token_limit_are_reported(pipeline, caplog):
  limit = pipeline.text_encoder.tokenizer.max_length
  with caplog.at_level(logging.WARNING):
    pipeline.text_encoder.tokenize(['calm piano', 'word ' * (2 * limit)])
  [record] = [r for r in caplog.records if 'text encoder' in r.getMessage()]
  assert "'word word" in record.getMessage() and f'limit of {limit} tokens' in record.getMessage()


def test_exported_weights_must_fit_pipeline_json(tiny_pipeline_folder, tmp_path):
  folder = tmp_path / 'edited'
  shutil.copytree(tiny_pipeline_folder, folder)
  spec = json.loads((folder / 'pipeline.json').read_text())
  spec['lm']['num_heads'], spec['lm']['dim'] = 2, 32  # pipeline.json edited, lm.safetensors not
  (folder / 'pipeline.json').write_text(json.dumps(spec))
  with pytest.raises(CheckpointError, match=r'lm.safetensors: .* has shape \(.*64.*\), pipeline.json needs'):
    pretrained.load(folder)
  spec['lm']['dim'], spec['lm']['num_heads'], spec['lm']['num_layers'] = 64, 4, 3
  (folder / 'pipeline.json').write_text(json.dumps(spec))
  with pytest.raises(CheckpointError, match=r'has shape \(2, .*\), pipeline.json needs \(3, '):
    pretrained.load(folder)


def _whole_infill(pipeline, audio, rate, texts, start, end, seed):
  """The infill of the whole audio: everything encoded, the span filled, everything decoded."""
  audio = pipeline.prepare_audio(audio, rate, len(texts))
  codes = pipeline.encode(audio)
  known = np.ones(codes.shape[-1], bool)
  known[int(start * pipeline.frame_rate):math.ceil(end * pipeline.frame_rate)] = False
  return pipeline.decode(pipeline._fill(texts, codes, known, seed, pipeline.decoding))[..., :audio.shape[-1]]


def test_infill_touches_only_the_audio_around_the_edit(pipeline, monkeypatch):
  rate, hop = pipeline.sample_rate, pipeline.codec_config.hop_length
  rng = np.random.default_rng(1)
  # 3.6 s, 180 frames: the region the edit reaches is the whole audio, so it is all encoded and decoded, as before.
  short = rng.uniform(-0.5, 0.5, (1, 180 * hop)).astype(np.float32)
  np.testing.assert_array_equal(pipeline.infill(short, rate, ['calm piano'], 1.6, 2.0, seed=3, original=False),
                                _whole_infill(pipeline, short, rate, ['calm piano'], 1.6, 2.0, 3))

  seconds = 60
  audio = rng.uniform(-0.5, 0.5, (1, seconds * rate)).astype(np.float32)
  lengths = []
  for name in ('encode', 'decode'):
    original = getattr(pipeline, name)
    monkeypatch.setattr(pipeline, name, lambda x, original=original: lengths.append(x.shape[-1]) or original(x))
  out = pipeline.infill(audio, rate, ['calm piano'], 30.0, 30.4, seed=3, original=False)  # the codec's rendering
  reach = 30 + 50  # a window, then a second of codec context, on either side of the 20-frame span
  assert out.shape == (1,) + audio.shape and np.isfinite(out).all()
  assert lengths == [(20 + 2 * reach) * hop, 20 + 2 * reach]  # samples encoded, frames decoded: not the minute
  lo, hi = (1500 - reach) * hop, (1520 + reach) * hop
  np.testing.assert_array_equal(out[0, :, :lo], audio[:, :lo])  # outside the region: the input itself
  np.testing.assert_array_equal(out[0, :, hi:], audio[:, hi:])
  inner = slice(lo + 50 * hop, hi - 50 * hop)  # between the crossfades: the decoded region as a whole infill has it
  region = audio[..., lo:hi]
  np.testing.assert_array_equal(out[..., inner], _whole_infill(pipeline, region, rate, ['calm piano'], 1.6, 2.0, 3)[
      ..., 50 * hop:-50 * hop])


def test_compiled_programs_are_a_bounded_lru(pipeline, monkeypatch):
  """Every distinct decoding value compiles a program; only the PROGRAM_CACHE most recently used are kept."""
  from magnet_jax.generation import pipeline as pipeline_module
  monkeypatch.setattr(pipeline_module, 'PROGRAM_CACHE', 2)
  pipeline._programs.clear()
  compiled = []
  monkeypatch.setattr(pipeline, 'on_compile', compiled.append)
  for temp in (3.0, 3.0 + 1e-6, 3.0, 3.0 + 2e-6, 3.0):
    pipeline.generate_tokens(['a'], 0.12, 0, temp=temp)
  assert len(compiled) == 3 and len(pipeline._programs) == 2  # 3.0 stayed in use: compiled once
  assert [key[1].temp for key in pipeline._programs]  # key: (decoder, decoding, shapes...) == [3.0 + 2e-6, 3.0]
