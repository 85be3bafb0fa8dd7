"""Choosing parameters by path pattern (`train.trainable`, `init.reinit`) and freezing the rest.

A parameter's path joins its tree keys with '/', e.g. 'transformer/layers/cross_attention/query' or 'heads/kernel';
a pattern is a regular expression searched in it (so 'cross_attention' selects every cross-attention kernel).
Frozen parameters get a zero update and no optimizer state (`optax.multi_transform` keeps state only for the
trainable leaves), which the trainer's logged optimizer-state count shows.
"""
import re
from collections.abc import Sequence

import flax.linen as nn
import jax
import optax


def path_of(keypath) -> str:
  """'/'-joined dict keys of a tree path (attribute keys such as nn.Partitioned's 'value' are skipped)."""
  return '/'.join(str(k.key) for k in keypath if isinstance(k, jax.tree_util.DictKey))


def paths(params) -> list[str]:
  return [path_of(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]


def select(params, patterns: Sequence[str], what: str) -> set[str]:
  """The parameter paths that any of `patterns` matches.

  Raises:
    ValueError: a pattern is not a regular expression or matches no parameter (naming `what`, the config field).
  """
  names = paths(params)
  chosen: set[str] = set()
  for text in patterns:
    try:
      pattern = re.compile(str(text))
    except re.error as e:
      raise ValueError(f'{what}: {text!r} is not a regular expression ({e})') from e
    hits = {n for n in names if pattern.search(n)}
    if not hits:
      raise ValueError(f'{what}: {text!r} matches no parameter; paths look like {names[0]!r}, {names[-1]!r}')
    chosen |= hits
  return chosen


def freeze(optimizer: optax.GradientTransformation, patterns: Sequence[str]) -> optax.GradientTransformation:
  """`optimizer` on the parameters `patterns` select, a zero update and no state for the others."""
  def labels(params):
    trainable = select(params, patterns, 'train.trainable')
    # boxed params (traced for the shardings) are labelled whole, so that masked-out ones lose their axis names too
    return jax.tree_util.tree_map_with_path(
        lambda p, _: 'trainable' if path_of(p) in trainable else 'frozen', params,
        is_leaf=lambda x: isinstance(x, nn.Partitioned))
  return optax.multi_transform({'trainable': optimizer, 'frozen': optax.set_to_zero()}, labels)
