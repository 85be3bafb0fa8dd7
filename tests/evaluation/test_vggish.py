"""VGGish in JAX: the front end against Google's (reference/vggish_input.py, NumPy float64) and the network against
torchvggish's (reference/vggish.py) with random weights, taken before its final ReLU as Google's FAD takes it."""
import jax
import numpy as np
import pytest

from magnet_jax.evaluation import quality, registry, vggish
from magnet_jax.io.errors import CheckpointError
from reference import vggish_input


def _music(samples: int, seed: int = 0) -> np.ndarray:
  """Harmonic notes over noise at 16 kHz."""
  rng = np.random.default_rng(seed)
  t = np.arange(samples) / vggish.SAMPLE_RATE
  audio = 0.01 * rng.standard_normal(samples)
  for onset in np.arange(0, samples / vggish.SAMPLE_RATE, 0.2):
    f0 = rng.choice([110.0, 220.0, 440.0, 880.0, 1760.0])
    envelope = np.where(t >= onset, np.exp(-(t - onset) * 6), 0.0)
    audio += envelope * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * 0.1
  return audio.astype(np.float32)


def _examples(audio: np.ndarray) -> np.ndarray:
  return np.asarray(vggish.log_mel(vggish.example_windows(audio)))


def test_front_end_matches_googles():
  """2.5 s -> 2 whole examples (the last 0.58 s unused, as the original); float32 vs float64 log-mel to 2e-5."""
  audio = _music(40000)
  expected = vggish_input.waveform_to_examples(audio.astype(np.float64), vggish.SAMPLE_RATE)
  got = _examples(audio)
  assert got.shape == expected.shape == (2, 96, 64)
  np.testing.assert_allclose(got, expected, atol=2e-5, rtol=0)  # measured: 8e-6 at most
  np.testing.assert_allclose(vggish.mel_matrix(), vggish_input.spectrogram_to_mel_matrix(64, 257, 16000, 125, 7500),
                             rtol=0, atol=1e-12)
  # A clip under one example is zero-padded to one (the original would give none).
  assert _examples(audio[:8000]).shape == (1, 96, 64)


def test_a_1khz_sine_lands_in_its_mel_band():
  """HTK mel: 1000 Hz is mel 1000.0; the 66 band edges run from mel(125) = 185.0 to mel(7500) = 2773.0 in steps of
  39.81, so band 19 (centre 981.3) and band 20 (centre 1021.1) share it, band 19 most (weights 0.53 and 0.47)."""
  t = np.arange(vggish.EXAMPLE_SAMPLES) / vggish.SAMPLE_RATE
  mel = np.exp(_examples(0.5 * np.sin(2 * np.pi * 1000.0 * t))[0]) - vggish.LOG_OFFSET  # [96, 64]
  energy = mel.mean(0)
  assert np.argsort(energy)[-2:].tolist() == [20, 19]
  assert energy[18:22].sum() > 0.98 * energy.sum()  # magnitudes: the window's side lobes hold ~1%


@pytest.fixture(scope='module')
def torch_model():
  """torchvggish's VGG with random weights (built once: 72M parameters)."""
  pytest.importorskip('torch')
  from reference import evaluation_models
  return evaluation_models.vggish_model()


def test_network_parity_with_torch_before_the_last_relu(torch_model):
  import torch
  examples = np.random.default_rng(0).normal(size=(2, 96, 64)).astype(np.float32)
  captured = []  # the last Linear's output, copied before torchvggish's in-place ReLU (not in the TF original)
  hook = torch_model.embeddings[-2].register_forward_hook(lambda module, inputs, out: captured.append(out.clone()))
  with torch.no_grad():
    with_relu = torch_model(torch.from_numpy(examples)[:, None]).numpy()
  hook.remove()
  expected = captured[0].numpy()
  params = vggish.from_torch_state_dict({k: v.numpy() for k, v in torch_model.state_dict().items()})
  got = np.asarray(vggish.network(params, examples))
  assert got.shape == (2, 128) and (expected < 0).mean() > 0.2  # negative values survive
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
  np.testing.assert_allclose(np.maximum(got, 0), with_relu, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_checkpoint_formats_load_the_same_parameters(tmp_path):
  """torch.save (zip and legacy formats, read without torch), safetensors and npz files of one state dict load the
  same parameters (a state dict of VGGish's names with small shapes where `load` does not check them: the formats
  are what is tested)."""
  torch = pytest.importorskip('torch')
  from safetensors.numpy import save_file
  rng = np.random.default_rng(0)
  names = [f'features.{i}' for i in (0, 3, 6, 8, 11, 13)] + [f'embeddings.{i}' for i in (0, 2, 4)]
  shapes = {f'{n}.weight': (4, 2, 3, 3) if n.startswith('features') else (4, 4) for n in names}
  shapes.update({f'{n}.bias': (4,) for n in names}, **{'features.0.weight': (64, 1, 3, 3),
                                                       'embeddings.4.weight': (128, 4096)})
  state = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / 'vggish.pth')
  # the format of the released vggish-10086976.pth (torch < 1.6)
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / 'legacy.pth',
             _use_new_zipfile_serialization=False)
  save_file(state, str(tmp_path / 'vggish.safetensors'))
  np.savez(tmp_path / 'vggish.npz', **state)
  params = vggish.from_torch_state_dict(state)
  for name in ('vggish.pth', 'legacy.pth', 'vggish.safetensors', 'vggish.npz'):
    loaded = vggish.load(str(tmp_path / name))
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(params), strict=True):
      np.testing.assert_array_equal(np.asarray(a), b, err_msg=name)
  with pytest.raises(CheckpointError, match='VGGish checkpoint not found'):
    vggish.load(str(tmp_path / 'missing.pth'))
  np.savez(tmp_path / 'other.npz', weight=np.zeros(3))
  with pytest.raises(CheckpointError, match='not a torchvggish state dict'):
    vggish.load(str(tmp_path / 'other.npz'))
  (tmp_path / 'garbage.pth').write_bytes(b'\x80\x02not a checkpoint')
  with pytest.raises(CheckpointError, match='garbage.pth: not a torch checkpoint') as error:
    vggish.load(str(tmp_path / 'garbage.pth'))
  assert '\n' not in str(error.value)


def test_embedder(torch_model, tmp_path):
  """One row per whole 0.96 s example of each clip, as the network gives it on the front end's examples."""
  state = {k: v.numpy() for k, v in torch_model.state_dict().items()}
  np.savez(tmp_path / 'vggish.npz', **state)
  clips = [('a', _music(20000, 1)), ('b', _music(35000, 2))]  # 1 and 2 examples
  embedder = registry.get('vggish', 'embedder').load(str(tmp_path / 'vggish.npz'), batch_size=2, progress=False)
  result = quality.embed_clips(quality.Models(embedder), clips, vggish.SAMPLE_RATE,
                               quality.Embedded(['a', 'b'], None, None, 0.0, None))
  assert result.embeddings.shape == (3, 128) and result.embedder == 'vggish/1'
  assert result.label_probs is None and list(result.owner) == [0, 1, 1]
  expected = vggish.network(vggish.from_torch_state_dict(state), _examples(clips[1][1]))
  np.testing.assert_allclose(result.embeddings[1:], np.asarray(expected), rtol=1e-5, atol=1e-5)
