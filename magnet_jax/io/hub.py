"""Hugging Face Hub names for model folders ('facebook/magnet-small-10secs', audiocraft's habit): found in
huggingface_hub's cache when the files are there, downloaded by huggingface_hub (the optional `[hub]` extra) when a
network exists, and otherwise one line saying how to get them.

The cache layout is huggingface_hub's: `$HF_HUB_CACHE` (default `$HF_HOME/hub`, `~/.cache/huggingface/hub`) holds
`models--<org>--<name>/refs/<revision>` (a commit hash) and `models--<org>--<name>/snapshots/<commit>/<files>`.
"""
import os
import re

_NAME = re.compile(r'[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?')


def is_name(name: str) -> bool:
  """Whether `name` reads as a Hub repository id ('org/name' or a legacy 'name') rather than a path."""
  return bool(_NAME.fullmatch(name)) and not name.startswith(('.', '~')) and '..' not in name


def cache_dir() -> str:
  """huggingface_hub's cache folder, from the same environment variables it reads."""
  if os.environ.get('HF_HUB_CACHE'):
    return os.environ['HF_HUB_CACHE']
  home = os.environ.get('HF_HOME') or os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser(
      '~/.cache'), 'huggingface')
  return os.path.join(home, 'hub')


def cached(name: str, revision: str = 'main') -> str | None:
  """The cached snapshot folder of repository `name` at `revision` (a branch, tag or commit), or None."""
  if not is_name(name):
    return None
  repo = os.path.join(cache_dir(), 'models--' + name.replace('/', '--'))
  commit = revision
  ref = os.path.join(repo, 'refs', revision)
  if os.path.isfile(ref):
    with open(ref) as f:
      commit = f.read().strip()
  snapshot = os.path.join(repo, 'snapshots', commit)
  return snapshot if os.path.isdir(snapshot) and os.listdir(snapshot) else None


def _offline() -> bool:
  return os.environ.get('HF_HUB_OFFLINE', '').lower() in ('1', 'true', 'yes', 'on')


def resolve(name: str, revision: str = 'main') -> str:
  """The local folder of Hub repository `name`: its cached snapshot, else a download by huggingface_hub.

  Raises:
    FileNotFoundError: not cached and not downloadable (no huggingface_hub, offline, no such repository), in one
      line saying how to get the files.
  """
  folder = cached(name, revision)
  if folder is not None:
    return folder
  get = (f'download it on a machine with a network (pip install huggingface_hub; huggingface-cli download {name}) '
         f'into {cache_dir()} (or set HF_HOME / HF_HUB_CACHE), or pass its local folder')
  if _offline():
    raise FileNotFoundError(f'{name}: no such folder, and not in the Hugging Face cache (HF_HUB_OFFLINE is set): {get}')
  try:
    import huggingface_hub  # noqa: PLC0415 (optional dependency: the [hub] extra)
  except ImportError:
    raise FileNotFoundError(f'{name}: no such folder, and not in the Hugging Face cache; huggingface_hub is not '
                            f'installed to download it (pip install magnet-jax[hub]): {get}') from None
  try:
    return huggingface_hub.snapshot_download(name, revision=revision, cache_dir=cache_dir())
  except Exception as e:  # network, authentication and missing-repository errors all end the same way
    reason = ' '.join(str(e).split())[:200]
    raise FileNotFoundError(f'{name}: no such folder, not in the Hugging Face cache, and not downloadable '
                            f'({type(e).__name__}: {reason}): {get}') from e
