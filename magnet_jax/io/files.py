"""Atomic file writes: a reader never sees half a file, a failed write leaves nothing behind.

Temporary files are named `.NAME.<pid>.<random>.tmp` after the process writing them, so that a later run can remove
those of writers that died (SIGKILL, power loss) with `remove_stale_temporaries`. `claim` gives one process at a
time the right to write an output name (an advisory `fcntl.flock` lock, released by the kernel when the process
dies, so a crash never leaves a stale claim).
"""
import errno
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from typing import Any

_TEMPORARY = re.compile(r'^\..+\.(\d+)\.[^.]+\.tmp$')


def temporary_beside(path: str) -> str:
  """A new, empty hidden file `.NAME.<pid>.*.tmp` in `path`'s folder (created), to be `publish`ed or `discard`ed."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(path)}.{os.getpid()}.', suffix='.tmp')
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


def sha256(path: str) -> str:
  """The hex sha256 of a file's bytes (read in 1 MiB blocks)."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def atomic_write(path: str, write: Callable[[str], Any]) -> None:
  """Calls write(tmp) with a temporary path beside `path`, then publishes it as `path`; on error, removes it."""
  tmp = temporary_beside(path)
  try:
    write(tmp)
    publish(tmp, path)
  except BaseException:
    discard(tmp)
    raise


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's live process
    return True
  return True


def remove_stale_temporaries(folder: str) -> list[str]:
  """Removes the temporary files in `folder` whose writer process is no longer running, and the claims' lock files
  no process holds; returns the temporary files' paths.

  (A temporary of another host's process on a shared folder is judged by this host's process table: name outputs
  apart per host.)
  """
  removed = []
  for name in os.listdir(folder) if os.path.isdir(folder) else ():
    if name.startswith('.') and name.endswith('.lock'):
      _remove_unheld_lock(os.path.join(folder, name))
      continue
    match = _TEMPORARY.match(name)
    if match and not _alive(int(match.group(1))):
      path = os.path.join(folder, name)
      try:
        os.remove(path)
        removed.append(path)
      except FileNotFoundError:  # another process cleaned it first
        pass
  return removed


def _remove_unheld_lock(path: str) -> None:
  """Removes a claim's lock file while holding its lock (a `Claim` opening it meanwhile sees it gone and retries)."""
  try:
    fd = os.open(path, os.O_RDWR)
  except FileNotFoundError:
    return
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.remove(path)
  except (BlockingIOError, FileNotFoundError):  # held (by a live writer, or by this process), or already gone
    pass
  finally:
    os.close(fd)


class Claim:
  """This process's exclusive right to write `path`: a lock on the hidden file `.NAME.lock` beside it.

  Raises:
    FileExistsError: another running process holds the claim (naming it).
  """

  def __init__(self, path: str):
    self.path = path
    self._lock = os.path.join(os.path.dirname(os.path.abspath(path)), f'.{os.path.basename(path)}.lock')
    while True:
      fd = os.open(self._lock, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        owner = os.read(fd, 32).decode(errors='replace').strip() or 'unknown'
        os.close(fd)
        raise FileExistsError(f'{path} is being written by another process (pid {owner}): use another --out, '
                              'name or --seed, or wait for it') from None
      # The holder before us may have released and unlinked the file after we opened it: then lock the new one.
      try:
        same = os.path.samestat(os.fstat(fd), os.stat(self._lock))
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    self._fd = fd

  def release(self) -> None:
    """Gives the name up (removing the lock file while still holding it)."""
    if self._fd is not None:
      try:
        os.remove(self._lock)
      except FileNotFoundError:
        pass
      os.close(self._fd)
      self._fd = None


def write_error(error: Exception, path: str) -> OSError:
  """An OSError naming `path` for a failed write: its errno's words, or, when the writer's own error lost the
  errno (libsndfile's 'System error'), 'no space left on device' if the device is full."""
  code = getattr(error, 'errno', None)
  if code is None:
    folder = os.path.dirname(os.path.abspath(path))
    code = errno.ENOSPC if os.path.isdir(folder) and _free_bytes(folder) < 1 << 16 else errno.EIO
  words = {errno.ENOSPC: 'no space left on device', errno.EDQUOT: 'disk quota exceeded',
           errno.EROFS: 'read-only file system', errno.EACCES: 'permission denied'}.get(code)
  return OSError(code, f'{words or os.strerror(code)} writing {path}' + ('' if words else f' ({error})'))


def _free_bytes(folder: str) -> int:
  stat = os.statvfs(folder)
  return stat.f_bavail * stat.f_frsize


def check_writable_folder(path: str, what: str) -> None:
  """Creates `path` if needed and checks that a file can be created in it.

  Raises:
    PermissionError: e.g. '--out X is not a writable folder (Read-only file system)'.
  """
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
      pass
  except OSError as e:
    reason = 'a file' if e.errno == errno.EEXIST or os.path.isfile(path) else e.strerror or e
    raise PermissionError(f'{what} {path} is not a writable folder ({reason})') from e
