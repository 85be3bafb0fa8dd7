"""Orbax checkpoints of the train state together with the data iterator's position, with sha256 manifests.

Saves are asynchronous and atomic (orbax writes to a temporary directory and renames it on commit), so an
interrupted save never leaves a half-written checkpoint that a resume would pick up; temporary directories left by
a killed run are removed when the next run opens the folder. Once a step is committed, process 0 writes
`<step>/sha256.json` (atomically): the size and sha256 of every file of the step. A restore first checks the
step against it, so a truncated or altered file is never restored silently: the latest checkpoint falls back to
the newest intact one (the damaged one is moved aside to `<step>.damaged`, with a warning naming it); an explicit
step refuses with one line naming the previous intact step. Restores go straight into the target shardings, so a
checkpoint saved on one mesh restores on another.
"""
import contextlib
import errno
import json
import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging

from magnet_jax.io.errors import CheckpointError
from magnet_jax.io.files import atomic_write, sha256

MANIFEST = 'sha256.json'


class Checkpointer:
  """Periodic train-state + data-state checkpoints under `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, save_every: int, max_to_keep: int = 3, async_save: bool = True):
    directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, save_interval_steps=max(save_every, 1), enable_async_checkpointing=async_save,
        cleanup_tmp_directories=True)
    self._manager = ocp.CheckpointManager(directory, options=options)
    self._unsigned: list[int] = []  # steps saved by this process whose manifest is not written yet
    self._lead = jax.process_index() == 0

  @property
  def directory(self) -> str:
    return str(self._manager.directory)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, data_state: dict, force: bool = False) -> bool:
    """Saves if `step` is on the interval (or `force`); returns whether a save started."""
    self.wait()  # orbax waits for the previous save here anyway; its manifest is written once it has committed
    with self._write_errors():
      started = self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)), force=force)
    if started:
      self._unsigned.append(step)
    return started

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores (state, data_state) at `step` (default: the latest intact one) into `abstract_state`'s shapes and
    shardings.

    Args:
      abstract_state: pytree of jax.ShapeDtypeStruct with `.sharding` set (the target layout).
      step: which checkpoint; None for the latest that passes its manifest (damaged later ones are moved aside).

    Raises:
      FileNotFoundError: there is no checkpoint to restore.
      CheckpointError: `step` (or, for None, every checkpoint) is damaged.
    """
    steps = sorted(self._manager.all_steps(), reverse=True)
    if not steps:
      raise FileNotFoundError(f'no checkpoint to resume from in {self.directory}')
    if step is not None:
      problem = self._damage(step) if step in steps else 'no such step'
      if problem is None:
        return self._restore(abstract_state, step)
      earlier = [s for s in steps if s < step and self._damage(s) is None]
      suggestion = f'restore step {earlier[0]} instead' if earlier else 'no earlier checkpoint is intact'
      raise CheckpointError(f'checkpoint {self._path(step)} cannot be restored ({problem}): {suggestion}')
    for candidate in steps:
      problem = self._damage(candidate)
      if problem is None:
        return self._restore(abstract_state, candidate)
      self._set_aside(candidate, problem)
    raise CheckpointError(f'every checkpoint in {self.directory} is damaged (moved aside to <step>.damaged)')

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are committed, then writes their manifests.

    Raises:
      OSError: a save failed for lack of space or permission, in one line naming the folder (its temporary
        directories removed).
    """
    with self._write_errors():
      self._manager.wait_until_finished()
      if self._lead:
        for step in self._unsigned:
          if os.path.isdir(self._path(step)):  # not already dropped by max_to_keep
            write_manifest(self._path(step))
    self._unsigned = []

  def close(self) -> None:
    self._manager.close()

  @contextlib.contextmanager
  def _write_errors(self):
    """A save that fails for a reason of the place (a full disk, a read-only folder), which orbax and TensorStore
    report from background threads in their own exception types, becomes one OSError; its temporary directories
    go."""
    try:
      yield
    except Exception as e:
      code = _place_errno(e)
      if code is None:
        raise
      self._unsigned = []
      if self._lead:
        for name in os.listdir(self.directory):
          if '.orbax-checkpoint-tmp' in name:
            shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
      raise OSError(code, f'{os.strerror(code).lower()} writing checkpoints to {self.directory}') from e

  def _path(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def _damage(self, step: int) -> str | None:
    return check_manifest(self._path(step))

  def _restore(self, abstract_state: Any, step: int) -> tuple[Any, dict]:
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored['state'], restored['data']

  def _set_aside(self, step: int, problem: str) -> None:
    """Moves a damaged step out of orbax's sight (so the run can save that step again), keeping it to inspect."""
    path = self._path(step)
    logging.warning('checkpoint %s is damaged (%s): moved aside to %s.damaged; falling back to the previous one',
                    path, problem, path)
    if self._lead:
      shutil.rmtree(path + '.damaged', ignore_errors=True)  # an older damaged copy of the same step
      os.replace(path, path + '.damaged')
    self._manager.reload()


def _place_errno(error: BaseException) -> int | None:
  """The errno of a full or unwritable place in `error` or its causes (also when only their text names it)."""
  codes = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in codes:
      return error.errno
    for code in codes:
      if os.strerror(code) in str(error):
        return code
    error = error.__cause__ or error.__context__
  return None


def _files(folder: str) -> dict[str, str]:
  """Relative path -> absolute path of every file under `folder` but the manifest."""
  found = {}
  for root, _, names in os.walk(folder):
    for name in names:
      full = os.path.join(root, name)
      relative = os.path.relpath(full, folder)
      if relative != MANIFEST:
        found[relative] = full
  return found


def write_manifest(folder: str) -> None:
  """Writes `folder/sha256.json`: {relative path: [size, sha256]} of every file of a committed checkpoint."""
  manifest = {name: [os.path.getsize(path), sha256(path)] for name, path in sorted(_files(folder).items())}
  def write(tmp):
    with open(tmp, 'w') as f:
      json.dump(manifest, f, indent=1)
  atomic_write(os.path.join(folder, MANIFEST), write)


def check_manifest(folder: str) -> str | None:
  """What is wrong with a checkpoint folder against its manifest (None: intact, or saved without one)."""
  path = os.path.join(folder, MANIFEST)
  if not os.path.exists(path):
    return None  # saved before manifests existed, or killed between commit and manifest: orbax's own checks only
  try:
    with open(path) as f:
      manifest = json.load(f)
  except (OSError, ValueError) as e:
    return f'unreadable {MANIFEST}: {e}'
  files = _files(folder)
  for name, (size, digest) in manifest.items():
    if name not in files:
      return f'{name} is missing'
    if os.path.getsize(files[name]) != size:
      return f'{name} has {os.path.getsize(files[name])} bytes, {size} were written'
    if sha256(files[name]) != digest:
      return f'{name} does not match its sha256'
  return None


def abstract_like(tree: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs of `tree` carrying `shardings` (a restore target)."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)
