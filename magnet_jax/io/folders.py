"""Finding a hub model's local folder (nothing is ever downloaded)."""
import os
from collections.abc import Sequence


def find_model_folder(name: str, roots: Sequence[str | os.PathLike]) -> str | None:
  """The first `<root>/<name>` or `<root>/<basename(name)>` holding a config.json, e.g. 'facebook/encodec_32khz'
  found as `<root>/encodec_32khz`; None if there is none."""
  for root in roots:
    for candidate in (os.path.join(root, name), os.path.join(root, os.path.basename(name))):
      if os.path.isfile(os.path.join(candidate, 'config.json')):
        return candidate
  return None
