"""Orbax checkpoints of the train state together with the data iterator's position.

Saves are asynchronous and atomic (orbax writes to a temporary directory and renames it on commit), so an
interrupted save never leaves a half-written checkpoint that a resume would pick up. Restores go straight into
the target shardings, so a checkpoint saved on one mesh restores on another.
"""
import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Periodic train-state + data-state checkpoints under `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, save_every: int, max_to_keep: int = 3, async_save: bool = True):
    directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, save_interval_steps=max(save_every, 1), enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(directory, options=options)

  @property
  def directory(self) -> str:
    return str(self._manager.directory)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, data_state: dict, force: bool = False) -> bool:
    """Saves if `step` is on the interval (or `force`); returns whether a save started."""
    return self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)), force=force)

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores (state, data_state) at `step` (default: latest) into `abstract_state`'s shapes and shardings.

    Args:
      abstract_state: pytree of jax.ShapeDtypeStruct with `.sharding` set (the target layout).
      step: which checkpoint; None for the latest.

    Raises:
      FileNotFoundError: there is no checkpoint to restore.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'no checkpoint to resume from in {self.directory}')
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored['state'], restored['data']

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are committed."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def abstract_like(tree: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs of `tree` carrying `shardings` (a restore target)."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)
