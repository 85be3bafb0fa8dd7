"""The EnCodec embedder (fadtk's encodec-emb) against transformers' EncodecModel encoder, on a random small model."""
import numpy as np
import pytest

pytest.importorskip('torch')
pytest.importorskip('transformers')
import torch  # noqa: E402

from magnet_jax.evaluation import registry  # noqa: E402
from reference.codec import save_transformers_encodec  # noqa: E402

# A 24 kHz layout like facebook/encodec_24khz (fadtk's model), shrunk: causal, 2 LSTM layers, odd strides.
TINY = dict(num_filters=4, hidden_size=8, codebook_size=16, sampling_rate=24000, upsampling_ratios=[5, 4, 2],
            target_bandwidths=[1.5, 3.0], num_lstm_layers=2, use_causal_conv=True, pad_mode='reflect')


@pytest.fixture(scope='module')
def folder_and_model(tmp_path_factory):
  folder = tmp_path_factory.mktemp('tmp') / 'encodec_24khz'
  return str(folder), save_transformers_encodec(folder, **TINY)


def test_embeddings_match_the_transformers_encoder(folder_and_model):
  """[T, D] per clip, frames as transformers' encoder gives them ([1, D, T] transposed, as fadtk does), to 1e-4."""
  folder, model = folder_and_model
  embedder = registry.get('encodec', 'embedder').load(folder, progress=False)
  assert (embedder.name, embedder.sample_rate) == ('encodec-encodec_24khz/1', 24000)
  rng = np.random.default_rng(0)
  clips = [('a', 0.3 * rng.normal(size=2400).astype(np.float32)), ('b', 0.3 * rng.normal(size=3001).astype(np.float32))]
  ours = embedder.embed(clips)
  for (_, audio), got in zip(clips, ours, strict=True):
    with torch.no_grad():
      expected = model.encoder(torch.from_numpy(audio)[None, None])[0].T.numpy()
    assert got.shape == expected.shape == (-(-len(audio) // 40), 8)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_default_is_the_embedded_codec_and_needs_no_file():
  spec = registry.get('encodec')
  spec.check(None)  # the option is not required
  assert spec.stats_name(None) == 'encodec-default/1'
  with pytest.raises(NotADirectoryError, match='--encodec-folder: no such folder: /nope'):
    spec.check('/nope')
