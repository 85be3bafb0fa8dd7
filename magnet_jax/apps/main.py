"""The `magnet-jax` console script: `magnet-jax serve [flags]` runs the server (apps/serve.py), `magnet-jax live`
live music (apps/live.py), anything else is the sampling command (apps/sample.py). Each command's flags are defined
only when it runs."""
import importlib
import sys


def main() -> None:
  if len(sys.argv) > 1 and sys.argv[1] in ('serve', 'live'):
    importlib.import_module(f'magnet_jax.apps.{sys.argv.pop(1)}').main()
  else:
    from magnet_jax.apps import sample
    sample.main()
