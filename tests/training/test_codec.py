"""Codec training: losses, k-means / EMA / dead-code codebooks (with audiocraft parity), the training loop and its
resume, codec folders (atomic save, load errors), and the shipped codec's reconstruction quality."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magnet_jax.audio import mel_distance, onset_rate, spectral_centroid
from magnet_jax.codec import codebook, init, io, losses
from magnet_jax.codec.quantizer import rvq_encode
from magnet_jax.corpus import generate_corpus
from magnet_jax.corpus.clips import read_split, render_split
from magnet_jax.evaluation.codec import reconstruct_clips
from magnet_jax.io import params as params_io
from magnet_jax.io.errors import CheckpointError
from magnet_jax.training import codec as train
from tests.helpers import load_config

# The shipped codec on the 108 test-split clips of the seed-0 corpus (2000 clips, 5 s) measured 5.41 dB mean
# mel_distance (groove 3.7, ambient 4.2, solo bass 2.9, solo flute 4.1, solo organ 11.6); references on the same
# scale: white noise at 30 dB SNR 5.5, at 20 dB SNR 10.4, another clip 17.4. The bound leaves 0.6 dB for numerical
# differences between machines.
SHIPPED_MEL_DISTANCE_MAX = 6.0


def _tiny(**overrides):
  return load_config('codec_tiny', **overrides)


def test_frames_match_sliding_windows():
  audio = np.arange(2 * 48, dtype=np.float32).reshape(2, 48)
  expected = np.lib.stride_tricks.sliding_window_view(audio, 16, axis=1)[:, ::4]
  np.testing.assert_array_equal(losses.frames(jnp.asarray(audio), 16, 4), expected)


def test_multiscale_mel_loss_is_zero_for_equal_audio_and_grows_with_noise():
  rng = np.random.default_rng(0)
  audio = jnp.asarray(np.sin(np.arange(4000) * 0.3)[None, None] * 0.5, jnp.float32)
  noise = jnp.asarray(rng.normal(size=audio.shape), jnp.float32)
  loss = jax.jit(lambda est: losses.multiscale_mel_loss(est, audio, 8000))
  assert float(loss(audio)) < 1e-12
  assert 0.0 < loss(audio + 0.001 * noise) < loss(audio + 0.01 * noise) < loss(audio + 0.1 * noise)


def test_first_batch_initialises_the_codebooks_and_loss_decreases_on_it():
  config = _tiny()
  codec = train.validate(config)
  optimizer = train.make_codec_optimizer(config)
  clips = render_split('train', 0, 8, codec.sample_rate, 0.5)
  batch = jnp.asarray(np.stack(clips.audio[:4])[:, None, :800])  # 4 crops x 100 frames
  rng = jax.random.key(0)
  state = train.initial_state(config, codec, optimizer, rng, batch)
  blank = train.initial_state(config, codec, optimizer, rng, None)
  assert not np.allclose(state.params['quantizer']['codebooks'], blank.params['quantizer']['codebooks'])
  np.testing.assert_allclose(state.stats.cluster_size.sum(axis=1), 400)  # every frame counted by each codebook
  step = train.make_train_step(config, codec, optimizer)
  history = []
  for _ in range(40):
    state, metrics = step(state, batch, jax.random.key(1))
    history.append(float(metrics['loss']))
  assert np.all(np.isfinite(history))
  assert np.mean(history[-5:]) < 0.75 * np.mean(history[:5]), history  # measured: 3.16 -> 2.16


def _clustered(rng: np.random.Generator, num_centers: int, shape: tuple[int, int, int]):
  centers = rng.normal(size=(num_centers, shape[-1])).astype(np.float32) * 3
  points = centers[rng.integers(num_centers, size=shape[:2])]
  return jnp.asarray(points + 0.05 * rng.normal(size=shape).astype(np.float32))


def test_kmeans_init_fills_codebooks_from_data():
  latent = _clustered(np.random.default_rng(0), 16, (20, 50, 8))  # [B, T, D], 1000 vectors
  codebooks, stats = codebook.kmeans_init(jax.random.key(0), latent, n_q=2, bins=16, num_iters=20)
  flat = latent.reshape(-1, 8)
  codes, _ = rvq_encode(codebooks, latent)
  first = np.asarray(codes[:, 0]).reshape(-1)
  # Every entry of the first codebook is the mean of the vectors assigned to it (a k-means fixed point), with
  # the counts of that assignment.
  for v in range(16):
    assigned = np.asarray(flat)[first == v]
    assert len(assigned) == stats.cluster_size[0, v]
    if len(assigned):
      np.testing.assert_allclose(codebooks[0, v], assigned.mean(0), atol=1e-4)
  np.testing.assert_allclose(stats.embed_avg, codebooks * stats.cluster_size[..., None], rtol=1e-6)
  # The residual quantization error is a small part of the error of the random codebooks audiocraft starts from.
  error = lambda books: float(jnp.mean((rvq_encode(books, latent)[1] - latent) ** 2))
  random_books = jax.random.uniform(jax.random.key(1), codebooks.shape, minval=-1, maxval=1) * np.sqrt(6 / 16)
  assert error(codebooks) < 0.1 * error(random_books)


def test_dead_codes_are_replaced_by_batch_vectors():
  rng = np.random.default_rng(0)
  live = rng.normal(size=(4, 4)).astype(np.float32)
  dead = 100.0 + rng.normal(size=(4, 4)).astype(np.float32)  # far from the data: nothing is assigned to them
  codebooks = jnp.asarray(np.concatenate([live, dead])[None])  # [K=1, V=8, D=4]
  sizes = jnp.asarray([[5.0] * 4 + [0.1] * 4])
  stats = codebook.CodebookStats(cluster_size=sizes, embed_avg=codebooks * sizes[..., None])
  latent = jnp.asarray(rng.normal(size=(2, 10, 4)).astype(np.float32))
  codes, _ = rvq_encode(codebooks, latent)
  new, new_stats = codebook.ema_update(jax.random.key(0), codebooks, stats, latent, codes, decay=0.9,
                                       epsilon=1e-5, threshold_ema_dead_code=1.0)
  new = np.asarray(new)
  vectors = np.asarray(latent).reshape(-1, 4)
  for v in range(4, 8):
    assert np.min(np.linalg.norm(vectors - new[0, v], axis=1)) < 1e-3  # a vector of the batch
  assert len({tuple(np.round(new[0, v], 4)) for v in range(4, 8)}) == 4  # four different ones
  np.testing.assert_allclose(new_stats.cluster_size[0, 4:], 0.9, rtol=1e-6)  # reset to the threshold, decayed
  assert float(codebook.dead_fraction(new_stats, 1.0)) == 0.5  # not used by this batch: dead again next step
  np.testing.assert_array_less(np.abs(new[0, :4]), 50.0)  # live entries stay near the data


def test_ema_update_matches_audiocraft():
  torch = pytest.importorskip('torch')
  from reference.stubs import import_audiocraft
  import_audiocraft()
  from audiocraft.quantization.core_vq import EuclideanCodebook

  rng = np.random.default_rng(0)
  reference = EuclideanCodebook(dim=4, codebook_size=8, decay=0.9, epsilon=1e-5, threshold_ema_dead_code=0)
  reference.train()
  embed = rng.normal(size=(8, 4)).astype(np.float32)
  cluster_size = rng.uniform(0.5, 3.0, size=8).astype(np.float32)
  reference.embed.copy_(torch.from_numpy(embed))
  reference.cluster_size.copy_(torch.from_numpy(cluster_size))
  reference.embed_avg.copy_(torch.from_numpy(embed * cluster_size[:, None]))
  x = rng.normal(size=(30, 4)).astype(np.float32)
  _, index = reference(torch.from_numpy(x))

  stats = codebook.CodebookStats(cluster_size=jnp.asarray(cluster_size[None]),
                                 embed_avg=jnp.asarray((embed * cluster_size[:, None])[None]))
  new, new_stats = codebook.ema_update(jax.random.key(0), jnp.asarray(embed[None]), stats, jnp.asarray(x[None]),
                                       jnp.asarray(index.numpy()[None, None]), decay=0.9, epsilon=1e-5,
                                       threshold_ema_dead_code=0.0)
  np.testing.assert_allclose(new[0], reference.embed.numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new_stats.cluster_size[0], reference.cluster_size.numpy(), rtol=1e-5)
  np.testing.assert_allclose(new_stats.embed_avg[0], reference.embed_avg.numpy(), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  """A 20-step tiny training run (checkpoints and evaluations at 10 and 20); returns its workdir."""
  workdir = tmp_path_factory.mktemp('codec') / 'run'
  summary = train.train_codec(_tiny(), str(workdir), export_dir=str(workdir / 'export'))
  return workdir, summary


def test_training_writes_metrics_codec_folder_and_export(tiny_run):
  workdir, summary = tiny_run
  rows = [json.loads(line) for line in open(workdir / 'metrics.jsonl')]
  assert [r['step'] for r in rows] == [10, 20]
  assert {'loss', 'l1', 'msspec', 'commitment', 'dead_codes', 'steps_per_s', 'valid_mel_distance'} <= set(rows[-1])
  assert summary['step'] == 20 and np.isfinite(summary['valid_mel_distance'])
  config, params = io.load_codec(workdir / 'codec')
  _, exported = io.load_codec(workdir / 'export')
  assert config == train.validate(_tiny())
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(exported), strict=True):
    np.testing.assert_array_equal(a, b)
  meta = json.load(open(workdir / 'codec' / io.CONFIG_FILE))['metadata']
  assert meta['step'] == 20 and meta['valid_mel_distance'] == pytest.approx(summary['valid_mel_distance'])


def test_resume_continues_exactly(tiny_run, tmp_path):
  workdir, _ = tiny_run
  resumed = tmp_path / 'resumed'
  shutil.copytree(workdir / 'checkpoints' / '10', resumed / 'checkpoints' / '10')
  with pytest.raises(FileExistsError, match='--resume'):
    train.train_codec(_tiny(), str(resumed))
  train.train_codec(_tiny(), str(resumed), resume=True)
  _, straight = io.load_codec(workdir / 'codec')
  _, params = io.load_codec(resumed / 'codec')
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(params), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_corpus_folder_and_in_memory_clips_agree(tmp_path):
  generate_corpus(str(tmp_path), num_clips=30, seed=3, duration=0.5, progress=False)
  rendered = render_split('test', 3, 30, 16000, 0.5)
  read = read_split(str(tmp_path), 'test', 16000)
  assert read.groups == rendered.groups and len(read.groups) > 0
  for a, b in zip(read.audio, rendered.audio, strict=True):
    np.testing.assert_allclose(a, b, atol=1 / 32768)  # 16-bit WAVs
  with pytest.raises(ValueError, match='sample rate 16000'):
    read_split(str(tmp_path), 'test', 8000)


def test_bad_config_values_give_one_clear_error(tmp_path):
  with pytest.raises(ValueError, match='config.codec'):
    train.validate(_tiny(**{'codec.nonexistent': 1}))
  run = subprocess.run([sys.executable, '-m', 'magnet_jax.apps.codec_train', '--config=configs/codec_tiny.py',
                        f'--workdir={tmp_path}', '--config.train.batch_size=0'], capture_output=True, text=True,
                       timeout=300)
  assert run.returncode == 1
  assert run.stderr.strip().splitlines()[-1] == ('magnet_jax.apps.codec_train: error: train.batch_size must be >= 1, '
                                                 'got 0'), run.stderr[-1500:]


def _small_codec():
  config = train.validate(_tiny())
  return config, init(jax.random.key(0), config)


def test_save_load_round_trip(tmp_path):
  config, params = _small_codec()
  io.save_codec(tmp_path / 'codec', config, params, step=3)
  assert sorted(os.listdir(tmp_path / 'codec')) == [io.CONFIG_FILE, io.PARAMS_FILE]  # no temporary files left
  loaded_config, loaded = io.load_codec(tmp_path / 'codec')
  assert loaded_config == config
  assert jax.tree.structure(loaded) == jax.tree.structure(params)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded), strict=True):
    np.testing.assert_array_equal(a, b)


def test_interrupted_save_keeps_the_previous_files(tmp_path, monkeypatch):
  config, params = _small_codec()
  folder = tmp_path / 'codec'
  io.save_codec(folder, config, params)
  before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}

  def crash(flat, path):
    open(path, 'wb').write(b'partial')
    raise KeyboardInterrupt
  monkeypatch.setattr(params_io, 'save_file', crash)
  with pytest.raises(KeyboardInterrupt):
    io.save_codec(folder, config, jax.tree.map(lambda x: x + 1, params))
  assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before


def test_bad_codec_folders_give_one_clear_error(tmp_path):
  config, params = _small_codec()
  with pytest.raises(CheckpointError, match='codec folder not found'):
    io.load_codec(tmp_path / 'missing')
  folder = tmp_path / 'codec'
  io.save_codec(folder, config, params)
  (folder / io.PARAMS_FILE).write_bytes((folder / io.PARAMS_FILE).read_bytes()[:100])
  with pytest.raises(CheckpointError, match='unreadable safetensors'):
    io.load_codec(folder)
  io.save_codec(folder, config, params)
  (folder / io.CONFIG_FILE).write_text('{"format": "magnet-jax-codec", "config": {"bins": ')
  with pytest.raises(CheckpointError, match='not valid JSON'):
    io.load_codec(folder)
  (folder / io.CONFIG_FILE).write_text('{"weights": 1}')
  with pytest.raises(CheckpointError, match='not a magnet-jax codec config'):
    io.load_codec(folder)
  io.save_codec(folder, dataclasses.replace(config, bins=32), params)  # config and params disagree
  with pytest.raises(CheckpointError, match='quantizer/codebooks has shape'):
    io.load_codec(folder)
  (folder / io.CONFIG_FILE).write_text(json.dumps({'format': io.FORMAT, 'config': {'pad_mode': 'wrap'}}))
  with pytest.raises(CheckpointError, match='invalid codec config'):
    io.load_codec(folder)
  io.save_codec(folder, config, params)
  os.remove(folder / io.PARAMS_FILE)
  with pytest.raises(CheckpointError, match='weights file not found'):
    io.load_codec(folder)


def test_shipped_codec_reconstructs_held_out_clips_and_keeps_what_prompts_control():
  config, params = io.load_codec(io.EMBEDDED_CODEC_DIR)
  clips = render_split('test', 0, 2000, config.sample_rate, 5.0)
  recon = reconstruct_clips(config, params, clips)
  rate = config.sample_rate
  assert np.mean([mel_distance(x, y, rate) for x, y in zip(clips.audio, recon, strict=True)]) < \
      SHIPPED_MEL_DISTANCE_MAX
  group = lambda name, stat: [stat(y, rate) for y, g in zip(recon, clips.groups, strict=True) if g == name]
  # Measured on the reconstructions: groove onset rates 1.6 .. 5.2 per s, ambient pads 0 .. 0.2; centroids of
  # solo bass 180 .. 254 Hz, of solo flute 1623 .. 1942 Hz.
  assert min(group('groove', onset_rate)) > 1.0 > max(group('ambient', onset_rate))
  assert max(group('solo bass', spectral_centroid)) < 500 < 1000 < min(group('solo flute', spectral_centroid))
