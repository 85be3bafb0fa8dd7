"""The `magnet-jax` console script: `magnet-jax serve [flags]` runs the server (apps/serve.py), anything else is
the sampling command (apps/sample.py). Each command's flags are defined only when it runs."""
import sys


def main() -> None:
  if len(sys.argv) > 1 and sys.argv[1] == 'serve':
    del sys.argv[1]
    from magnet_jax.apps import serve
    serve.main()
  else:
    from magnet_jax.apps import sample
    sample.main()
