"""Atomic file writes: a reader never sees half a file, a failed write leaves nothing behind."""
import os
import tempfile
from collections.abc import Callable
from typing import Any


def atomic_write(path: str, write: Callable[[str], Any]) -> None:
  """Calls write(tmp) with a temporary path beside `path` (its folder created), then renames it to `path`,
  readable by all (mkstemp makes it private); on error, removes it."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
  os.close(fd)
  try:
    write(tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
