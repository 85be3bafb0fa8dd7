"""The `magnet-jax` console script: `magnet-jax SUBCOMMAND [flags]` runs a subcommand (`SUBCOMMANDS`), anything else
is the sampling command (apps/sample.py). Each command's flags are defined only when it runs."""
import importlib
import importlib.metadata
import sys

# name -> (module, what it does, the extra it needs or None)
SUBCOMMANDS = {
    'serve': ('magnet_jax.apps.serve', 'the HTTP API and the web page (docs/serving.md)', 'serve'),
    'live': ('magnet_jax.apps.live', 'endless generation you steer while it plays (docs/live.md)', None),
}
# What each extra brings that its command imports first: a missing one is a missing extra, not a bug.
_EXTRA_MODULES = {'serve': {'fastapi', 'pydantic', 'uvicorn', 'starlette', 'multipart', 'prometheus_client'}}


def version() -> str:
  """'magnet-jax VERSION' and the source's git commit when it runs from a checkout."""
  from magnet_jax.generation import records  # noqa: PLC0415 (imports JAX: only when asked)
  commit = records.source_commit()
  return f'magnet-jax {importlib.metadata.version("magnet-jax")}' + (f' (source {commit})' if commit else '')


def usage() -> str:
  lines = ['usage: magnet-jax [flags]              generate music (the flags below)',
           '       magnet-jax SUBCOMMAND [flags]   (magnet-jax SUBCOMMAND --help for its flags)', '', 'subcommands:']
  lines += [f'  {name:8s} {description}' for name, (_, description, _) in SUBCOMMANDS.items()]
  return '\n'.join([*lines, '', 'magnet-jax --version prints the version.', ''])


def run_subcommand(name: str) -> None:
  """Runs `SUBCOMMANDS[name]`'s main; a missing extra is one line saying what to install."""
  module, _, extra = SUBCOMMANDS[name]
  try:  # the extra's modules are imported by the command's module or once its flags are parsed
    importlib.import_module(module).main()
  except ModuleNotFoundError as e:
    if extra is None or (e.name or '').split('.')[0] not in _EXTRA_MODULES[extra]:
      raise
    sys.exit(f"magnet-jax {name}: error: it needs the [{extra}] extra (no module {e.name!r}): "
             f"pip install 'magnet-jax[{extra}]'")


def main() -> None:
  if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
    name = sys.argv.pop(1)
    sys.argv[0] = f'magnet-jax {name}'
    run_subcommand(name)
    return
  if len(sys.argv) > 1 and sys.argv[1] == '--version':
    print(version())
    return
  if len(sys.argv) > 1 and sys.argv[1] in ('-h', '--help', '--helpshort', '-?'):
    print(usage())
  from magnet_jax.apps import sample  # noqa: PLC0415 (its flags are defined only when it runs)
  sample.main()


if __name__ == '__main__':
  main()
