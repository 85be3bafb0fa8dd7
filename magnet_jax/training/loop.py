"""What every training loop of the project shares (the LM's `trainer.train` and the codec's `train_codec`): the
checkpoint folder guard, the progress bar with rates and ETA, `metrics.jsonl`, and the finiteness check of
logged metrics."""
import json
import math
import os
import time
from collections.abc import Mapping, Sequence

import numpy as np
from tqdm import tqdm

from magnet_jax.training.checkpointing import Checkpointer


def open_checkpointer(workdir: str, train: Mapping, resume: bool) -> Checkpointer:
  """`workdir`'s Checkpointer (folder created); a workdir with checkpoints needs `resume`.

  Args:
    workdir: the run's folder.
    train: the config's `train` section (checkpoint_every, max_checkpoints).
    resume: whether the run continues from the latest checkpoint.

  Raises:
    FileExistsError: checkpoints exist and `resume` is False.
  """
  os.makedirs(workdir, exist_ok=True)
  checkpointer = Checkpointer(workdir, train['checkpoint_every'], train['max_checkpoints'])
  if checkpointer.latest_step() is not None and not resume:
    latest = checkpointer.latest_step()
    checkpointer.close()
    raise FileExistsError(f'{workdir} already holds checkpoints (step {latest}): pass --resume to continue, or '
                          'choose another --workdir')
  return checkpointer


def mean_metrics(host: Sequence[Mapping[str, float]], steps: Sequence[int], what: str = 'training',
                 finite: Sequence[str] = ('loss',)) -> dict[str, float]:
  """The mean of each metric over the steps of one log interval (metrics on the host, one per step of `steps`).

  Raises:
    FloatingPointError: a `finite` metric is NaN or inf, naming the first such step (which the caller has not
      checkpointed).
  """
  for step, m in zip(steps, host, strict=True):
    if not all(math.isfinite(float(m[name])) for name in finite):
      values = ', '.join(f'{name}={float(m[name])}' for name in finite)
      raise FloatingPointError(f'{what} diverged at step {step}: {values}; no checkpoint was written for it')
  return {k: float(np.mean([float(m[k]) for m in host])) for k in host[0]}


class Progress:
  """The loop's tqdm bar, its steps/s and ETA between log points, and `metrics.jsonl` rows (written only where
  `enabled`, i.e. on process 0)."""

  def __init__(self, workdir: str, first: int, num_steps: int, desc: str, enabled: bool = True):
    self.num_steps = num_steps
    self._path = os.path.join(workdir, 'metrics.jsonl')
    self._enabled = enabled
    self._bar = tqdm(total=num_steps, initial=first, disable=not enabled, desc=desc, unit='step')
    self._tick, self._tick_step = time.perf_counter(), first

  def step(self) -> None:
    self._bar.update(1)

  def rate(self, done: int) -> float:
    """Steps per second since the previous call (or the start)."""
    rate = (done - self._tick_step) / max(time.perf_counter() - self._tick, 1e-9)
    self._tick, self._tick_step = time.perf_counter(), done
    return rate

  def exclude(self) -> None:
    """Leaves the time since the last `rate` call (e.g. an evaluation) out of the next rate."""
    self._tick = time.perf_counter()

  def eta(self, done: int, rate: float) -> float:
    """Seconds to the last step at `rate`."""
    return (self.num_steps - done) / max(rate, 1e-9)

  def log(self, row: Mapping, **postfix: str) -> None:
    """Appends `row` to metrics.jsonl and shows `postfix` on the bar."""
    self._bar.set_postfix(**postfix)
    if self._enabled:
      with open(self._path, 'a') as f:
        f.write(json.dumps(dict(row)) + '\n')

  def close(self) -> None:
    self._bar.close()
