"""The commands' shared plumbing: old underscore spellings of dashed flags are respelled, each with one warning."""
from absl import flags

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
