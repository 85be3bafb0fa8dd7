"""TensorBoard event files of a run's scalars and audio samples (`<workdir>/tensorboard`), beside metrics.jsonl;
`tensorboard --logdir <workdir>/tensorboard` (the `[train]` extra) shows and plays them.

tensorboardX writes the event format without TensorFlow (clu's metric_writers would pull TF into training).
"""
import math
import os
import sys
from collections.abc import Mapping

import numpy as np


def _summary_writer_class() -> type:
  """tensorboardX's SummaryWriter, imported without torch: tensorboardX imports torch where it is installed only to
  accept torch tensors (training hands it numpy), and training never imports torch (seconds per process, and the
  reference extras stay out of training)."""
  absent = 'torch' not in sys.modules
  if absent:
    sys.modules['torch'] = None  # `import torch` raises ImportError, which tensorboardX handles
  try:
    from tensorboardX import SummaryWriter
  finally:
    if absent:
      del sys.modules['torch']
  return SummaryWriter


SummaryWriter = _summary_writer_class()


class MetricsWriter:
  """Writes numeric scalars and audio per step; a no-op where not `enabled` (processes other than 0)."""

  def __init__(self, workdir: str, enabled: bool = True):
    self._writer = SummaryWriter(os.path.join(workdir, 'tensorboard')) if enabled else None

  def write(self, step: int, scalars: Mapping[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in scalars.items():
      if name != 'step' and isinstance(value, (int, float)) and math.isfinite(value):
        self._writer.add_scalar(name, value, step)
    self._writer.flush()

  def audio(self, step: int, tag: str, audio: np.ndarray, sample_rate: int) -> None:
    """One clip, audio [C, N] in [-1, 1] (mono or stereo; more channels are averaged to mono)."""
    if self._writer is None:
      return
    clip = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
    clip = clip if clip.shape[0] <= 2 else clip.mean(axis=0, keepdims=True)
    self._writer.add_audio(tag, clip.T, step, sample_rate=sample_rate)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
