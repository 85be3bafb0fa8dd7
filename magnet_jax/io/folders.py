"""Finding a hub model's local folder: beside a checkpoint, or in huggingface_hub's cache (never downloaded here)."""
import os
from collections.abc import Sequence

from magnet_jax.io import hub


def find_model_folder(name: str, roots: Sequence[str | os.PathLike]) -> str | None:
  """The first `<root>/<name>` or `<root>/<basename(name)>` holding a config.json, e.g. 'facebook/encodec_32khz'
  found as `<root>/encodec_32khz`, else its snapshot in the Hugging Face cache (`hub.cached`); None if there is
  none."""
  for root in roots:
    for candidate in (os.path.join(root, name), os.path.join(root, os.path.basename(name))):
      if os.path.isfile(os.path.join(candidate, 'config.json')):
        return candidate
  snapshot = hub.cached(name)
  return snapshot if snapshot is not None and os.path.isfile(os.path.join(snapshot, 'config.json')) else None
