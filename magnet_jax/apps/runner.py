"""Shared plumbing of the command-line entry points: one-line errors for bad flags and bad input, log lines that
stand above progress bars."""
import contextlib
import errno
import glob
import logging as std_logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

import jax
import tqdm
from absl import app, flags, logging

from magnet_jax.io.errors import Cancelled, CheckpointError

# Errors caused by the user's input (flags, files, configs) or their cancelling; anything else is a bug and keeps its
# traceback.
USER_ERRORS = (ValueError, KeyError, FileExistsError, FileNotFoundError, NotADirectoryError, PermissionError,
               FloatingPointError, CheckpointError, Cancelled)
# OSErrors of the place the user chose (a full disk, a read-only or forbidden folder) are user errors too.
USER_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _one_line(error: BaseException) -> str:
  if isinstance(error, OSError) and error.strerror:  # e.g. os.makedirs's FileExistsError(17, 'File exists', path)
    text = error.strerror if error.filename is None else f'{error.strerror}: {error.filename}'
  else:
    text = str(error.args[0]) if error.args else str(error)
  text = ' '.join(text.replace("\\'", '').replace('\\n', ' ').split())
  quoted = len(text) > 1 and text[0] == text[-1] and text[0] in '\'"'  # a KeyError's repr
  return text[1:-1] if quoted else text


def dashed_spellings(prog: str, argv: list[str]) -> list[str]:
  """`argv` with old underscore spellings of dashed flags (--batch_size, --noanneal_temp) respelled with dashes,
  each with a one-line deprecation warning on stderr; every other argument as given (--config.data.dir included)."""
  respelled = list(argv[:1])
  for i, arg in enumerate(argv[1:], 1):
    if arg == '--':
      return respelled + argv[i:]
    dashes = len(arg) - len(arg.lstrip('-'))
    name, sep, value = arg[dashes:].partition('=')
    negated = 'no' if name.startswith('no') and name[2:].replace('_', '-') in flags.FLAGS else ''
    new = negated + name[len(negated):].replace('_', '-')
    if dashes in (1, 2) and '_' in name and name not in flags.FLAGS and new[len(negated):] in flags.FLAGS:
      print(f'{prog}: warning: --{name} is deprecated; use --{new}', file=sys.stderr)
      arg = f'--{new}{sep}{value}'
    respelled.append(arg)
  return respelled


def _parse_flags(prog: str) -> Callable[[list[str]], list[str]]:
  def parse(argv: list[str]) -> list[str]:
    try:
      return flags.FLAGS(dashed_spellings(prog, argv))
    except (flags.Error, AttributeError, KeyError, ValueError, TypeError) as e:
      sys.exit(f'{prog}: error: {_one_line(e)}')
  return parse


def _quiet_orbax(record) -> bool:
  """Keeps orbax's per-save INFO chatter out of the log, and the tracebacks of its background threads (a failed
  save reaches the command as one error; orbax's warnings and errors still show, one line each)."""
  if record.name == 'asyncio' and 'orbax' in record.getMessage():  # a failed save's unretrieved async tasks
    return False
  if '/orbax/' not in record.pathname:
    return True
  record.exc_info, record.exc_text, record.stack_info = None, None, None
  return record.levelno >= std_logging.WARNING


def _config_error(error: OSError) -> str | None:
  """ml_collections' failure to load --config (an OSError without errno; the cause's last line says why)."""
  text = str(error)
  if error.errno is None and 'Failed loading config file' in text:
    return f'cannot load --config: {text.strip().splitlines()[-1].strip()}'
  return None


def _message(prog: str, error: Exception) -> str | None:
  """The one-line message for a user error, or for a JAX runtime error in a multi-process job; None for bugs."""
  if isinstance(error, USER_ERRORS) or (isinstance(error, OSError) and error.errno in USER_ERRNOS):
    return f'{prog}: error: {_one_line(error)}'
  if isinstance(error, OSError) and _config_error(error):
    return f'{prog}: error: {_config_error(error)}'
  if isinstance(error, jax.errors.JaxRuntimeError) and jax.distributed.is_initialized():
    return f'{prog}: error: {_one_line(error)} (another process of the job probably died: see its log)'
  return None


def _exit_job(message: str) -> NoReturn:
  """Ends a process of a multi-process job at once (`os._exit(1)`) with `message` and the process index.

  A normal exit would first wait in JAX's shutdown barrier for peers that are dead or blocked in a collective with
  this process, then abort; exiting at once lets the failure reach them within their heartbeat timeout.
  """
  print(f'\n{message} [process {jax.process_index()} of {jax.process_count()}]', file=sys.stderr, flush=True)
  os._exit(1)


def _show_flags_in_help(module: str) -> None:
  """Makes the flags defined in `module` the key flags of the running script, which `--help` lists."""
  script = sys.argv[0]
  for flag in flags.FLAGS.get_key_flags_for_module(module):
    flags.FLAGS.register_key_flag_for_module(script, flag)


# Device nodes of accelerators JAX has plugins for: TPU (/dev/accel*, /dev/vfio), NVIDIA, AMD.
_ACCELERATOR_NODES = ('/dev/accel*', '/dev/vfio/[0-9]*', '/dev/nvidia[0-9]*', '/dev/kfd')


def cpu_only_without_accelerators() -> bool:
  """On a machine without accelerator device nodes, JAX is told to use the CPU only: probing an installed libtpu
  there prints "Unable to initialize backend 'tpu'" and libtpu's own warnings, which read as a failure. An explicit
  JAX_PLATFORMS is left alone. Returns whether it did."""
  if os.environ.get('JAX_PLATFORMS') or any(glob.glob(pattern) for pattern in _ACCELERATOR_NODES):
    return False
  jax.config.update('jax_platforms', 'cpu')
  return True


def _console_handlers() -> list[std_logging.Handler]:
  """The handlers that write the root logger's lines to the terminal: absl's (its Python handler, the one that
  filters and writes) and stream handlers on stdout / stderr."""
  found = []
  for handler in std_logging.getLogger().handlers:
    if isinstance(handler, logging.ABSLHandler):
      found.append(handler.python_handler)
    elif isinstance(handler, std_logging.StreamHandler) and handler.stream in (sys.stdout, sys.stderr):
      found.append(handler)
  return found


@contextlib.contextmanager
def logs_above_bars():
  """While it lasts, each line the console handlers write first clears the active tqdm bars and redraws them after
  (`tqdm.external_write_mode`), so it stands on its own line above the bars, not glued to one. The handlers stay in
  place (their `emit` is wrapped): absl's `set_verbosity` sets the root logger's level only while its handler is
  among the root's, and tqdm's `logging_redirect_tqdm` replaces only plain stream handlers."""
  handlers = _console_handlers()
  for handler in handlers:
    handler.emit = _above_bars(handler.emit)
  try:
    yield
  finally:
    for handler in handlers:
      del handler.emit  # the class's again


def _above_bars(emit: Callable[[std_logging.LogRecord], None]) -> Callable[[std_logging.LogRecord], None]:
  def wrapped(record: std_logging.LogRecord) -> None:
    with tqdm.tqdm.external_write_mode(file=sys.stderr):
      emit(record)
  return wrapped


def run(prog: str, main: Callable[[], None]) -> None:
  """Parses flags and runs `main()`; bad flags and user errors end with one line `prog: error: ...` (exit 1).

  `--help` lists the flags of `main`'s module (absl lists only the running script's own, and a console script or
  a thin entry point defines none). In a multi-process job every error ends the process at once, naming it
  (`_exit_job`).
  """
  _show_flags_in_help(main.__module__)
  cpu_only_without_accelerators()
  def wrapped(argv: list[str]) -> None:
    if len(argv) > 1:
      sys.exit(f'{prog}: error: unexpected arguments {argv[1:]}')
    logging.get_absl_handler().python_handler.addFilter(_quiet_orbax)
    try:
      with logs_above_bars():
        main()
    except Exception as e:  # bugs keep their traceback: re-raised, or printed before a multi-process exit
      message = _message(prog, e)
      if jax.distributed.is_initialized():
        if message is None:
          traceback.print_exception(e)
        _exit_job(message or f'{prog}: error: {type(e).__name__}: {_one_line(e)}')
      if message is None:
        raise
      sys.exit(message)
  app.run(wrapped, flags_parser=_parse_flags(prog))
