"""musicnn MTT (shipped in the wheel): penultimate features [200] per 3 s patch for FAD / KAD, its 50 MagnaTagATune
tags for KL; one pass gives both."""
from collections.abc import Sequence

import jax
import numpy as np
import tqdm

from magnet_jax.evaluation import musicnn
from magnet_jax.evaluation.registry import Clips, ModelSpec


def _softmax_by_clip(logits: np.ndarray, owner: np.ndarray, clips: int) -> np.ndarray:
  """[P, L] patch logits, [P] clip index -> [clips, L]: per clip, the softmax averaged over its patches."""
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  return np.stack([probs[owner == i].mean(0) for i in range(clips)]) if clips else probs


class MusicnnModel:
  """Embedder and classifier at 16 kHz, in jitted batches of `batch_size` patches (the last one padded)."""
  name = musicnn.NAME
  sample_rate = musicnn.SAMPLE_RATE
  labels = musicnn.MTT_LABELS

  def __init__(self, weights: str = musicnn.WEIGHTS, batch_size: int = 32, progress: bool = True):
    self.params = musicnn.load(weights)
    self.batch_size = batch_size
    self.progress = progress

  def embed_and_classify(self, clips: Clips, desc: str = 'musicnn') -> tuple[list[np.ndarray], np.ndarray]:
    """-> ([P_i, 200] penultimate features per clip, [N, 50] tag distributions)."""
    windows = [musicnn.patches(audio) for _, audio in clips]
    owner = np.concatenate([np.full(len(w), i) for i, w in enumerate(windows)]) if windows else np.zeros(0, int)
    flat = np.concatenate(windows) if windows else np.zeros((0, musicnn.PATCH_SAMPLES + musicnn.N_FFT), np.float32)
    features, logits = [np.zeros((0, 200), np.float32)], [np.zeros((0, len(self.labels)), np.float32)]
    with tqdm.tqdm(total=len(flat), desc=desc, unit='patch', disable=not self.progress) as bar:
      for start in range(0, len(flat), self.batch_size):
        batch = flat[start:start + self.batch_size]
        pad = self.batch_size - len(batch)  # one compiled shape: the last batch is padded
        f, g = jax.device_get(musicnn.embed_patches(self.params, np.pad(batch, ((0, pad), (0, 0)))))
        features.append(f[:len(batch)])
        logits.append(g[:len(batch)])
        bar.update(len(batch))
    features = np.concatenate(features)
    per_clip = [features[owner == i] for i in range(len(clips))]
    return per_clip, _softmax_by_clip(np.concatenate(logits), owner, len(clips))

  def embed(self, clips: Clips, desc: str = 'musicnn') -> list[np.ndarray]:
    return self.embed_and_classify(clips, desc)[0]

  def label_probs(self, clips: Sequence[tuple[str, np.ndarray]], desc: str = 'musicnn tags') -> np.ndarray:
    return self.embed_and_classify(clips, desc)[1]


MODEL = ModelSpec(
    name='musicnn', roles=('embedder', 'classifier'),
    load=lambda path, batch_size=32, progress=True: MusicnnModel(batch_size=batch_size, progress=progress),
    summary='musicnn MTT, shipped (penultimate [200] per 3 s patch; 50 MagnaTagATune tags)',
    stats_name=lambda path: musicnn.NAME)
