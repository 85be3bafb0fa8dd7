"""Shared plumbing of the command-line entry points: one-line errors for bad flags and bad input."""
import logging as std_logging
import sys
from collections.abc import Callable

from absl import app, flags, logging

from magnet_jax.convert.torch_pickle import CheckpointError

# Errors caused by the user's input (flags, files, configs); anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, KeyError, FileExistsError, FileNotFoundError, NotADirectoryError, PermissionError,
               FloatingPointError, CheckpointError)


def _one_line(error: BaseException) -> str:
  text = str(error.args[0]) if error.args else str(error)
  return ' '.join(text.replace("\\'", '').replace('\\n', ' ').strip('\'"').split())


def _parse_flags(prog: str) -> Callable[[list[str]], list[str]]:
  def parse(argv: list[str]) -> list[str]:
    try:
      return flags.FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, ValueError, TypeError) as e:
      sys.exit(f'{prog}: error: {_one_line(e)}')
  return parse


def _quiet_orbax(record) -> bool:
  """Keeps orbax's per-save INFO chatter out of the log (its warnings and errors still show)."""
  return record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname


def run(prog: str, main: Callable[[], None]) -> None:
  """Parses flags and runs `main()`; bad flags and user errors end with one line `prog: error: ...` (exit 1)."""
  def wrapped(argv: list[str]) -> None:
    if len(argv) > 1:
      sys.exit(f'{prog}: error: unexpected arguments {argv[1:]}')
    logging.get_absl_handler().python_handler.addFilter(_quiet_orbax)
    try:
      main()
    except USER_ERRORS as e:
      sys.exit(f'{prog}: error: {_one_line(e)}')
  app.run(wrapped, flags_parser=_parse_flags(prog))
