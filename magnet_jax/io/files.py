"""Atomic file writes: a reader never sees half a file, a failed write leaves nothing behind."""
import os
import tempfile
from collections.abc import Callable
from typing import Any


def temporary_beside(path: str) -> str:
  """A new, empty hidden file `.NAME.*.tmp` in `path`'s folder (created), to be `publish`ed or `discard`ed."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
  os.close(fd)
  return tmp


def publish(tmp: str, path: str) -> None:
  """Renames a finished temporary file onto `path`, readable by all (mkstemp makes it private)."""
  os.chmod(tmp, 0o644)
  os.replace(tmp, path)


def discard(tmp: str) -> None:
  """Removes a temporary file after a failed write, if it is still there."""
  if os.path.exists(tmp):
    os.remove(tmp)


def atomic_write(path: str, write: Callable[[str], Any]) -> None:
  """Calls write(tmp) with a temporary path beside `path`, then publishes it as `path`; on error, removes it."""
  tmp = temporary_beside(path)
  try:
    write(tmp)
    publish(tmp, path)
  except BaseException:
    discard(tmp)
    raise
