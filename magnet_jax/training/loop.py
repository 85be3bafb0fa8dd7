"""What every training loop of the project shares (the LM's `trainer.train` and the codec's `train_codec`): the
checkpoint folder guard, the progress bar with rates and ETA, `metrics.jsonl`, and the finiteness check of
logged metrics."""
import json
import math
import os
import time
from collections.abc import Mapping, Sequence

import ml_collections
import numpy as np
from tqdm import tqdm

from magnet_jax.io import params as params_io
from magnet_jax.io.files import atomic_write, check_writable_folder
from magnet_jax.training.checkpointing import Checkpointer


def open_checkpointer(workdir: str, train: Mapping, resume: bool) -> Checkpointer:
  """`workdir`'s Checkpointer (folder created); a workdir with checkpoints needs `resume`.

  Args:
    workdir: the run's folder.
    train: the config's `train` section (checkpoint_every, max_checkpoints).
    resume: whether the run continues from the latest checkpoint.

  Raises:
    FileExistsError: checkpoints exist and `resume` is False.
    PermissionError: `workdir` is a file, or a folder one cannot write in.
  """
  check_writable_folder(workdir, 'workdir')
  checkpointer = Checkpointer(workdir, train['checkpoint_every'], train['max_checkpoints'])
  if checkpointer.latest_step() is not None and not resume:
    latest = checkpointer.latest_step()
    checkpointer.close()
    raise FileExistsError(f'{workdir} already holds checkpoints (step {latest}): pass --resume to continue, or '
                          'choose another --workdir')
  return checkpointer


def check_resume_config(workdir: str, config: ml_collections.ConfigDict, resume: bool,
                        may_change: Sequence[str], write: bool = True) -> None:
  """Keeps `workdir/config.json`, the run's config, and refuses a resume that changes what the checkpoint depends on.

  A fresh start writes it (atomically, where `write`: process 0); a resume compares the command's config with it:
  keys in `may_change` (dotted names, or prefixes ending in '.') may differ and are recorded, any other difference
  is one error naming the key and both values. A run from before config.json existed gets one on its first resume.

  Raises:
    ValueError: e.g. '--resume cannot change train.batch_size (the run has 8, this command 16); ...'.
  """
  path = os.path.join(workdir, 'config.json')
  current = _flat(json.loads(json.dumps(config.to_dict())))
  if resume and os.path.exists(path):
    with open(path) as f:
      stored = _flat(json.load(f))
    for key in sorted(stored.keys() | current.keys()):
      fixed = not any(key == name or (name.endswith('.') and key.startswith(name)) for name in may_change)
      if fixed and stored.get(key) != current.get(key):
        raise ValueError(f'--resume cannot change {key} (the run has {stored.get(key)!r}, this command '
                         f'{current.get(key)!r}); a resume may change only {", ".join(may_change)}: start a new '
                         '--workdir to change the rest')
  if write:
    params_io.save_json(path, config.to_dict())


def _flat(tree: Mapping, prefix: str = '') -> dict:
  flat = {}
  for key, value in tree.items():
    flat.update(_flat(value, f'{prefix}{key}.') if isinstance(value, Mapping) else {f'{prefix}{key}': value})
  return flat


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
  `enabled`, i.e. on process 0).

  metrics.jsonl holds each log point once, in step order, across kills and resumes: a run starting at step `first`
  (the restored checkpoint's) first drops the rows past it (rewriting the file atomically), and every row states
  its `window` [first step, last step] of the steps it summarises.
  """

  def __init__(self, workdir: str, first: int, num_steps: int, desc: str, enabled: bool = True):
    self.num_steps = num_steps
    self._path = os.path.join(workdir, 'metrics.jsonl')
    self._enabled = enabled
    self._logged = first  # the last step of the previous row's window
    if enabled:
      _drop_rows_after(self._path, first)
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
    """Appends `row` (with its 'step') to metrics.jsonl, adding its 'window', and shows `postfix` on the bar."""
    self._bar.set_postfix(**postfix)
    step = int(row['step'])
    if self._enabled:
      with open(self._path, 'a') as f:
        f.write(json.dumps({**row, 'window': [self._logged + 1, step]}) + '\n')
    self._logged = step

  def close(self) -> None:
    self._bar.close()


def _drop_rows_after(path: str, step: int) -> None:
  """Rewrites metrics.jsonl (atomically) without the rows past `step`, written by a run that was then cut short.
  A torn last line (a kill during the append) is dropped too."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = f.read().splitlines()
  kept = []
  for line in lines:
    try:
      if int(json.loads(line)['step']) <= step:
        kept.append(line)
    except (ValueError, KeyError, TypeError):
      continue
  if len(kept) != len(lines):
    def write(tmp):
      with open(tmp, 'w') as f:
        f.writelines(line + '\n' for line in kept)
    atomic_write(path, write)
