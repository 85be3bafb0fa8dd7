"""A persistent XLA compilation cache for sampling, so a program compiled once on a machine is loaded from disk by
every later process (the "compiling (first run only)" step then takes the time of a file read)."""
import os

import jax


def default_dir() -> str:
  """$MAGNET_JAX_CACHE, else $XDG_CACHE_HOME/magnet-jax/xla, else ~/.cache/magnet-jax/xla."""
  if os.environ.get('MAGNET_JAX_CACHE'):
    return os.environ['MAGNET_JAX_CACHE']
  root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(root, 'magnet-jax', 'xla')


def enable(folder: str | None = None) -> str:
  """Points JAX's persistent compilation cache at `folder` (default `default_dir()`), unless the user already set
  one (`jax_compilation_cache_dir` / JAX_COMPILATION_CACHE_DIR), and returns the folder in use.

  Programs that compile in under `jax_persistent_cache_min_compile_time_secs` (JAX's default: 1 s) are not stored.
  """
  current = jax.config.jax_compilation_cache_dir
  if current:
    return current
  folder = folder or default_dir()
  os.makedirs(folder, exist_ok=True)
  jax.config.update('jax_compilation_cache_dir', folder)
  return folder
