"""The `magnet-jax` entry point: --version, subcommands in --help, a missing extra in one line, prompts that look like
a schedule."""
import subprocess
import sys

from tests.helpers import REPO_ROOT, without


def _main(*args, prelude=''):
  code = prelude + 'import sys; sys.argv[0] = "magnet-jax"; from magnet_jax.apps.main import main; main()'
  run = subprocess.run([sys.executable, '-c', code, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=600)
  return run.returncode, run.stdout, run.stderr.strip().splitlines()


def test_version():
  code, out, _ = _main('--version')
  assert code == 0 and out.startswith('magnet-jax ') and len(out.splitlines()) == 1


def test_help_lists_the_subcommands():
  _, out, _ = _main('--help')  # absl's --help exits with 1
  assert 'magnet-jax SUBCOMMAND' in out and '  serve ' in out and '  live ' in out and '--prompt' in out


def test_serve_without_the_extra_is_one_line():
  code, _, errors = _main('serve', prelude=without('fastapi', 'pydantic', 'uvicorn'))
  assert code == 1
  assert errors == ["magnet-jax serve: error: it needs the [serve] extra (no module 'pydantic'): "
                    "pip install 'magnet-jax[serve]'"] or "pip install 'magnet-jax[serve]'" in errors[-1]
  assert len(errors) == 1


def test_prompts_that_read_as_a_schedule_warn(tmp_path):
  code, _, errors = _main('--prompt', '0:ambient pads', '--prompt', '6:fast drum groove', '--checkpoint',
                          str(tmp_path / 'none'), '--out', str(tmp_path / 'out'))
  assert code == 1 and any('every --prompt reads as SECONDS:TEXT' in line and '--schedule' in line
                           for line in errors)
  code, _, errors = _main('--prompt', 'ambient pads', '--prompt', '6:fast drum groove', '--checkpoint',
                          str(tmp_path / 'none'), '--out', str(tmp_path / 'out'))
  assert not any('SECONDS:TEXT' in line for line in errors)


def test_jax_skips_the_tpu_probe_without_accelerators(monkeypatch):
  import jax

  from magnet_jax.apps import runner
  before = jax.config.jax_platforms
  monkeypatch.delenv('JAX_PLATFORMS', raising=False)
  monkeypatch.setattr(runner.glob, 'glob', lambda pattern: [])
  try:
    assert runner.cpu_only_without_accelerators() and jax.config.jax_platforms == 'cpu'
    monkeypatch.setattr(runner.glob, 'glob', lambda pattern: ['/dev/accel0'] if 'accel' in pattern else [])
    jax.config.update('jax_platforms', before)
    assert not runner.cpu_only_without_accelerators() and jax.config.jax_platforms == before
    monkeypatch.setenv('JAX_PLATFORMS', 'cuda')  # an explicit choice is left alone
    monkeypatch.setattr(runner.glob, 'glob', lambda pattern: [])
    assert not runner.cpu_only_without_accelerators()
  finally:
    jax.config.update('jax_platforms', before)
