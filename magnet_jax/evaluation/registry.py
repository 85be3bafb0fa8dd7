"""Evaluation models by name: one `typing.Protocol` per role, each model found in `evaluation/models/`.

  spec = registry.get('vggish')                  # ModelSpec: its roles, its local file option, how to load it
  model = spec.load('vggish-10086976.pth', batch_size=32, progress=True)
  registry.names('embedder')                     # ['encodec', 'musicnn', 'vggish']

Roles and the metrics they serve:
  embedder    fad, kad, fad_inf   embed(clips, desc) -> [[P_i, D]] per clip (each row one sample of the set)
  classifier  kl                  label_probs(clips, desc) -> [N, L] label distributions
  scorer      clap                similarities(clips, texts) -> [N] cosine of each clip's audio and its text

Every model has `name` (name/version, recorded with each number it measures) and `sample_rate` (of the mono float32
audio it takes; clips are [(name, audio [N])]). A model playing two roles in one pass (musicnn's embedding and tags)
also has `embed_and_classify(clips, desc) -> (embeddings, label_probs)`.

Adding a model is adding a file to `evaluation/models/` that defines `MODEL = ModelSpec(...)`: the registry imports
every module there, and the commands' flags (`--embedder NAME`, `--classifier NAME`, `--scorer NAME` and each
model's file option, e.g. `--vggish-checkpoint`) come from the specs (`define_flags`).
"""
import dataclasses
import functools
import importlib
import os
import pkgutil
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

Clips = Sequence[tuple[str, np.ndarray]]  # [(name, mono float32 audio [N] at the model's sample_rate)]

ROLES = ('embedder', 'classifier', 'scorer')
METRIC_ROLES = {'fad': 'embedder', 'kad': 'embedder', 'fad_inf': 'embedder', 'kl': 'classifier', 'clap': 'scorer'}
DEFAULTS = {'embedder': 'musicnn', 'classifier': 'musicnn', 'scorer': 'clap'}


@runtime_checkable
class Embedder(Protocol):
  name: str
  sample_rate: int

  def embed(self, clips: Clips, desc: str = 'embed') -> list[np.ndarray]:
    """-> [P_i, D] float32 embeddings per clip."""


@runtime_checkable
class Classifier(Protocol):
  name: str
  sample_rate: int

  def label_probs(self, clips: Clips, desc: str = 'classify') -> np.ndarray:
    """-> [N, L] label distributions, one per clip."""


@runtime_checkable
class Scorer(Protocol):
  name: str
  sample_rate: int

  def similarities(self, clips: Clips, texts: Sequence[str]) -> np.ndarray:
    """-> [N] cosine similarity of each clip's audio embedding and its text's."""


@dataclasses.dataclass(frozen=True)
class Option:
  """A model's local weights: a command flag naming a file or folder."""
  flag: str               # the keyword of `quality.choose_models`, e.g. 'vggish_checkpoint'
  kind: str               # 'file' or 'folder'
  help: str
  required: bool = True   # False: the model has a shipped default

  @property
  def cli(self) -> str:
    """The command-line spelling, e.g. '--vggish-checkpoint'."""
    return '--' + self.flag.replace('_', '-')


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A registered evaluation model."""
  name: str                     # the name flags and code choose it by
  roles: tuple[str, ...]        # among ROLES
  load: Callable[..., object]   # load(path: str | None, batch_size: int, progress: bool) -> the model
  summary: str                  # one line for --help
  option: Option | None = None  # None: shipped, nothing to give
  stats_name: Callable[[str | None], str] | None = None  # embedders: the name/version statistics carry, unloaded

  def check(self, path: str | None) -> None:
    """Raises ValueError / FileNotFoundError / NotADirectoryError for a missing or absent file option."""
    if self.option is None:
      return
    if not path:
      if self.option.required:
        raise ValueError(f'{self.name} needs {self.option.cli} PATH ({self.option.help})')
      return
    exists = os.path.isfile if self.option.kind == 'file' else os.path.isdir
    if not exists(path):
      error = FileNotFoundError if self.option.kind == 'file' else NotADirectoryError
      raise error(f'{self.option.cli}: no such {self.option.kind}: {path}')


@functools.cache
def specs() -> dict[str, ModelSpec]:
  """{name: spec} of every module of `magnet_jax.evaluation.models` (each defines MODEL)."""
  from magnet_jax.evaluation import models
  found = {}
  for info in pkgutil.iter_modules(models.__path__):
    spec = importlib.import_module(f'{models.__name__}.{info.name}').MODEL
    if spec.name in found or not set(spec.roles) <= set(ROLES) or not spec.roles:
      raise ValueError(f'evaluation model {spec.name!r} ({info.name}) is registered twice or has bad roles')
    found[spec.name] = spec
  return dict(sorted(found.items()))


def names(role: str) -> list[str]:
  """The models that can play `role`, sorted."""
  return [name for name, spec in specs().items() if role in spec.roles]


def get(name: str, role: str | None = None) -> ModelSpec:
  """The spec of `name` (that plays `role`, when given).

  Raises:
    ValueError: no such model, or one that does not play `role`.
  """
  found = specs().get(name)
  if found is None or (role is not None and role not in found.roles):
    choices = names(role) if role else list(specs())
    raise ValueError(f'unknown {role or "evaluation model"} {name!r}; choose among {", ".join(choices)}')
  return found


def options() -> dict[str, Option]:
  """{flag: option} of every model's file option."""
  return {spec.option.flag: spec.option for spec in specs().values() if spec.option is not None}


def define_flags(flag_values=None) -> Callable[[], dict]:
  """Defines --embedder, --classifier, --scorer and every model's file option (absl flags, in `flag_values`, default
  absl's FLAGS) from the registry; returns a function giving their values as `quality.choose_models` arguments."""
  from absl import flags
  flag_values = flags.FLAGS if flag_values is None else flag_values
  defined = {}
  for role in ROLES:
    metrics = ', '.join(m for m, r in METRIC_ROLES.items() if r == role)
    summaries = '; '.join(f'{n}: {get(n).summary}' for n in names(role))
    defined[role] = flags.DEFINE_enum(role, DEFAULTS[role], names(role), f'Model for {metrics} ({summaries}).',
                                      flag_values=flag_values)
  for flag, option in options().items():
    defined[flag] = flags.DEFINE_string(option.cli[2:], None, option.help, flag_values=flag_values)
  return lambda: {name: holder.value for name, holder in defined.items()}
