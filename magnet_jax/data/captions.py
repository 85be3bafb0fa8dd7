"""Captions -> text for the conditioner: audiocraft's caption augmentations and the text-encoder spec.

`augment_description` is audiocraft's `augment_music_info_description` (MusicDataset's merge_text_p /
drop_desc_p / drop_other_p) over the structured fields of a record, with its field normalisation
(`MusicInfo.attribute_getter`); `word_dropout` is T5Conditioner's training-time word dropout. Both draw from a
numpy Generator, so a record's augmentation is fixed by the loader's seed and the record's position.
"""
import dataclasses
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

# Fields audiocraft may merge into the description (augment_music_info_description's is_valid_field).
AUDIOCRAFT_MERGE_FIELDS = ('key', 'bpm', 'genre', 'moods', 'instrument', 'keywords')


def _string(value) -> str | None:
  """audiocraft get_string: stripped, None for empty / 'None' / non-strings."""
  if not isinstance(value, str) or not value or value == 'None':
    return None
  return value.strip()


def _keyword(value) -> str | None:
  """audiocraft get_keyword: stripped and lower-cased."""
  value = _string(value)
  return None if value is None else value.lower()


def _keyword_list(values) -> list[str] | None:
  """audiocraft get_keyword_list: a list (or comma/space separated string) of keywords, None if empty."""
  if isinstance(values, str):
    values = [v.strip() for v in re.split(r'[,\s]', values)]
  elif isinstance(values, float) and math.isnan(values):
    values = []
  if not isinstance(values, list):
    values = [str(values)]
  keywords = [k for k in map(_keyword, values) if k is not None]
  return keywords or None


def _musical_key(value) -> str | None:
  """audiocraft get_musical_key: lower-cased, None when several keys are listed."""
  value = _string(value)
  return None if value is None or ',' in value else value.lower()


def _bpm(value) -> float | None:
  try:
    return None if value is None else float(value)
  except (TypeError, ValueError):
    return None


_NORMALIZERS = {'bpm': _bpm, 'key': _musical_key, 'moods': _keyword_list, 'keywords': _keyword_list,
                'genre': _keyword, 'name': _keyword, 'instrument': _keyword, 'title': _string, 'artist': _string}


def normalize_field(name: str, value):
  """A caption field as audiocraft's MusicInfo reads it (unknown fields pass through unchanged)."""
  return _NORMALIZERS[name](value) if name in _NORMALIZERS else value


def _as_text(value) -> str:
  return ', '.join(map(str, value)) if isinstance(value, list) else str(value)


def augment_description(description: str, attributes: Mapping, rng: np.random.Generator, merge_text_p: float,
                        drop_desc_p: float, drop_other_p: float,
                        fields: Sequence[str] = AUDIOCRAFT_MERGE_FIELDS) -> str:
  """audiocraft's `augment_music_info_description`.

  With probability merge_text_p, "field: value" pairs of the (normalised, non-empty) `fields` are shuffled and
  joined with ". ", each field kept with probability `drop_other_p` (audiocraft's condition, despite the name),
  and the description is dropped with probability drop_desc_p; the result is "description. pairs".

  Args:
    description: the caption ('' for none).
    attributes: the record's other caption fields.
    rng: randomness.
    merge_text_p, drop_desc_p, drop_other_p: audiocraft's MusicDataset probabilities.
    fields: the attribute names that may be merged.

  Returns:
    The new caption ('' for none).
  """
  text = description or None
  metadata = ''
  if rng.uniform() < merge_text_p:
    pairs = []
    for name in fields:
      value = normalize_field(name, attributes.get(name))
      if value is not None and isinstance(value, (int, float, str, list)) and rng.uniform() < drop_other_p:
        pairs.append(f'{name}: {_as_text(value)}')
    metadata = '. '.join(pairs[i] for i in rng.permutation(len(pairs)))
    if rng.uniform() < drop_desc_p:
      text = None
  if text is None:
    text = metadata if len(metadata) > 1 else None
  else:
    text = '. '.join([text.rstrip('.'), metadata])
  return text.strip() if text else ''


def word_dropout(text: str, rng: np.random.Generator, p: float) -> str:
  """audiocraft T5Conditioner's word dropout: each space-separated word is dropped with probability p."""
  words = text.split(' ')
  keep = rng.uniform(size=len(words)) >= p
  return ' '.join(word for word, kept in zip(words, keep, strict=True) if kept)


@dataclasses.dataclass(frozen=True)
class CaptionAugmentation:
  """audiocraft's training-time caption augmentations (MAGNeT music: 0.25, 0.5, 0.5, 0.3); all 0 = none."""
  merge_text_p: float = 0.0   # P(merge "field: value" pairs into the caption).
  drop_desc_p: float = 0.0    # P(drop the description when merging).
  drop_other_p: float = 0.0   # P(keep each field when merging) (audiocraft's condition, despite the name).
  word_dropout: float = 0.0   # P(drop each word of the caption) (T5Conditioner word_dropout).
  fields: tuple[str, ...] = AUDIOCRAFT_MERGE_FIELDS  # attributes that may be merged.

  def __post_init__(self):
    for name in ('merge_text_p', 'drop_desc_p', 'drop_other_p', 'word_dropout'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'{name} must be in [0, 1], got {getattr(self, name)}')
    object.__setattr__(self, 'fields', tuple(self.fields))

  @property
  def enabled(self) -> bool:
    return self.merge_text_p > 0 or self.word_dropout > 0

  def __call__(self, description: str, attributes: Mapping, rng: np.random.Generator) -> str:
    """The augmented caption of a record ('' for none)."""
    text = augment_description(description, attributes, rng, self.merge_text_p, self.drop_desc_p,
                               self.drop_other_p, self.fields) if self.merge_text_p > 0 else description
    return word_dropout(text, rng, self.word_dropout) if self.word_dropout > 0 and text else text
