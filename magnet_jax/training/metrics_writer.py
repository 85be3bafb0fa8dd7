"""TensorBoard event files of a run's scalars (`<workdir>/tensorboard`), beside metrics.jsonl.

tensorboardX writes the event format without TensorFlow (clu's metric_writers would pull TF into training).
"""
import math
import os
from collections.abc import Mapping

from tensorboardX import SummaryWriter


class MetricsWriter:
  """Writes numeric scalars per step; a no-op where not `enabled` (processes other than 0)."""

  def __init__(self, workdir: str, enabled: bool = True):
    self._writer = SummaryWriter(os.path.join(workdir, 'tensorboard')) if enabled else None

  def write(self, step: int, scalars: Mapping[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in scalars.items():
      if name != 'step' and isinstance(value, (int, float)) and math.isfinite(value):
        self._writer.add_scalar(name, value, step)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
