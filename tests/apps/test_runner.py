"""The commands' shared plumbing: old underscore spellings of dashed flags are respelled, each with one warning; log
lines written while a progress bar is active stand on their own lines."""
import logging as std_logging
import sys

import tqdm
from absl import flags, logging

from magnet_jax.apps import runner

flags.DEFINE_integer('runner-test-size', 1, 'A flag of this test.')
flags.DEFINE_bool('runner-test-loud', False, 'A flag of this test.')


def test_underscore_spellings_of_dashed_flags_warn_and_count(capsys):
  argv = ['prog', '--runner_test_size=3', '-runner_test_size', '4', '--norunner_test_loud', '--runner-test-size=5',
          '--config.data_dir=x', '--unknown_flag', 'a_value', '--', '--runner_test_size=6']
  assert runner.dashed_spellings('prog', argv) == [
      'prog', '--runner-test-size=3', '--runner-test-size', '4', '--norunner-test-loud', '--runner-test-size=5',
      '--config.data_dir=x', '--unknown_flag', 'a_value', '--', '--runner_test_size=6']
  assert capsys.readouterr().err.splitlines() == [
      'prog: warning: --runner_test_size is deprecated; use --runner-test-size',
      'prog: warning: --runner_test_size is deprecated; use --runner-test-size',
      'prog: warning: --norunner_test_loud is deprecated; use --norunner-test-loud']



def test_a_log_line_during_a_progress_bar_stands_on_its_own_line(capsys):
  """What `run` wraps every command in: absl's handler (as `app.run` installs it) writes above the active bar."""
  root, parsed = std_logging.getLogger(), flags.FLAGS.is_parsed()
  handler, level = logging.ABSLHandler(logging.PythonFormatter()), root.level
  root.addHandler(handler)
  root.setLevel(std_logging.INFO)
  flags.FLAGS.mark_as_parsed()  # as in a command (before parsing, absl writes a warning of its own first)
  try:
    with runner.logs_above_bars(), tqdm.tqdm(total=2, desc='work', mininterval=0, file=sys.stderr) as bar:
      bar.update()
      logging.info('LOGGED-MIDWAY')
      bar.update()
  finally:
    root.removeHandler(handler)
    root.setLevel(level)
    if not parsed:
      flags.FLAGS.unparse_flags()
  err = capsys.readouterr().err
  [line] = [line for line in err.split('\n') if 'LOGGED-MIDWAY' in line]
  shown = ''  # what a terminal shows of the line: each carriage return writes over it from its start
  for part in line.split('\r'):
    shown = part + shown[len(part):]
  shown = shown.rstrip()
  assert shown.startswith('I') and shown.endswith('LOGGED-MIDWAY'), shown  # absl's line alone, no bar around it
  assert 'work: 100%' in err  # the bar was drawn again and finished


def test_verbosity_still_reaches_every_logger_inside():
  """A command that sets absl's verbosity inside `run` quiets JAX's loggers too (process 1 of a multi-process job,
  `magnet-jax` silencing JAX's backend probing): absl sets the root logger's level only while its handler is
  among the root's, so the wrapping must leave the handlers in place."""
  root, absl_handler = std_logging.getLogger(), logging.get_absl_handler()
  added, level, verbosity = absl_handler not in root.handlers, root.level, logging.get_verbosity()
  if added:
    root.addHandler(absl_handler)
  try:
    with runner.logs_above_bars():
      logging.set_verbosity(logging.WARNING)
      assert not std_logging.getLogger('jax._src.distributed').isEnabledFor(std_logging.INFO)
      assert absl_handler in root.handlers
  finally:
    logging.set_verbosity(verbosity)
    root.setLevel(level)
    if added:
      root.removeHandler(absl_handler)
