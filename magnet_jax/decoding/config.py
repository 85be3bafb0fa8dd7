"""MAGNeT's decoding hyperparameters (`DecodingConfig`), checked once where they enter (a pipeline, a command, a
server request) and passed through as one frozen object.

Each field's metadata is its whole user surface: `help`, and its bounds (`min` / `max` for numbers, `choices` for
strings). The checks (`check_value`), the overrides parser of every command (`parse_overrides`), the commands' help
(`help_text`) and the server's request schema (serving/schema.py) all read it, so a field is described once.
"""
import dataclasses
import math
import numbers
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from magnet_jax.models.config import MagnetConfig

# Bounds a user would accept, chosen to keep every request's cost and numerics sane rather than to forbid taste:
MAX_STEPS = 1000   # steps per level: one LM call each; audiocraft uses 20/10/10/10, and quality saturates well before
MAX_TEMP = 100.0   # temperatures above ~10 already sample uniformly; 100 keeps logits / temp far inside float32
MAX_CFG = 100.0    # CFG coefficients: audiocraft's 10 is strong; 100 times a logit difference stays finite in float32
MAX_TOP_K = 65536  # top_k: at least any codebook card (2048 in the released models); `check_config` holds it to card


def _field(default: Any, help: str, **bounds) -> Any:  # noqa: A002 (the metadata key is `help`)
  return dataclasses.field(default=default, metadata={'help': help, **bounds})


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
  """MAGNeT decoding hyperparameters (defaults: audiocraft's MAGNeT.set_generation_params / _generate_magnet)."""
  decoding_steps: tuple[int, ...] = _field(
      (20, 10, 10, 10), 'Decoding steps per level, one per codebook (e.g. 20,10,10,10).', min=1, max=MAX_STEPS)
  temp: float = _field(3.0, 'Initial softmax temperature.', min=0.0, max=MAX_TEMP)
  top_k: int = _field(0, 'Top-k sampling when > 0 (and top_p is 0).', min=0, max=MAX_TOP_K)
  top_p: float = _field(0.9, 'Nucleus sampling mass when > 0 (wins over top_k); 0 turns it off.', min=0.0, max=1.0)
  max_cfg_coef: float = _field(10.0, 'Classifier-free guidance coefficient at the first step of a level.',
                               min=0.0, max=MAX_CFG)
  min_cfg_coef: float = _field(1.0, 'Classifier-free guidance coefficient at the last step of a level.',
                               min=0.0, max=MAX_CFG)
  anneal_temp: bool = _field(True, 'Decay the temperature linearly to 0 (clamped at 0.01) within each level.')
  span_scoring: str = _field('max', "Span confidence: 'max' (1 - max prob in the span) or 'prod' (sum of -log "
                             "probs; nonoverlap only).", choices=('max', 'prod'))
  span_arrangement: str = _field('nonoverlap', "'nonoverlap' spans (released default; T rounded up to whole spans) or "
                                 "'stride1' (recommended by the authors).", choices=('nonoverlap', 'stride1'))
  use_sampling: bool = _field(True, 'Sample; false: argmax (greedy).')
  rescorer_weight: float = _field(0.0, 'Weight w of the rescorer: w * p_rescorer + (1 - w) * p_magnet; 0 = plain '
                                  'MAGNeT (needs a rescorer).', min=0.0, max=1.0)
  rescorer_cfg_coef: float = _field(3.0, 'Classifier-free guidance coefficient of the rescorer (MusicGen\'s 3).',
                                    min=0.0, max=MAX_CFG)

  def __post_init__(self):
    for field in dataclasses.fields(self):
      object.__setattr__(self, field.name, check_value(field.name, getattr(self, field.name)))

  @property
  def num_steps(self) -> int:
    return sum(self.decoding_steps)


FIELDS = {f.name: f for f in dataclasses.fields(DecodingConfig)}


def _bounds(field: dataclasses.Field) -> str:
  meta = field.metadata
  if 'choices' in meta:
    return 'one of ' + ', '.join(repr(c) for c in meta['choices'])
  if 'min' in meta:
    return f'in [{meta["min"]:g}, {meta["max"]:g}]'
  return 'true or false'


def help_text(name: str) -> str:
  """A field's help with its allowed values, e.g. 'Initial softmax temperature. In [0, 100].'"""
  field = FIELDS[name]
  allowed = ('each ' if field.type is tuple or typing.get_origin(field.type) is tuple else '') + _bounds(field)
  return f'{field.metadata["help"]} {allowed[0].upper()}{allowed[1:]}.'


def check_name(name: str) -> dataclasses.Field:
  """The field called `name`.

  Raises:
    ValueError: no such field (the message lists them).
  """
  if name not in FIELDS:
    raise ValueError(f'unknown decoding setting {name!r}; known: {", ".join(FIELDS)}')
  return FIELDS[name]


def _is_int(value) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_value(name: str, value: Any) -> Any:
  """`value` checked against field `name`'s type and bounds, in the field's type (decoding_steps as a tuple).

  Raises:
    ValueError: one line naming the field, its allowed values and the value given.
  """
  field = check_name(name)
  kind, meta, allowed = field.type, field.metadata, _bounds(field)
  if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
    if not math.isfinite(value):  # a NaN or inf would decode garbage and be written as JSON `Infinity`
      raise ValueError(f'decoding.{name} must be a finite number {allowed}, got {value!r}')
    if meta['min'] <= value <= meta['max']:
      return float(value)
  elif kind is int and _is_int(value) and meta['min'] <= value <= meta['max']:
    return int(value)
  elif kind is bool and isinstance(value, bool):
    return value
  elif kind is str and value in meta['choices']:
    return value
  elif (kind not in (float, int, bool, str) and isinstance(value, list | tuple) and value
        and all(_is_int(v) and meta['min'] <= v <= meta['max'] for v in value)):
    return tuple(int(v) for v in value)
  what = {float: 'a number ', int: 'an integer ', bool: '', str: ''}.get(kind, 'one integer per level, each ')
  raise ValueError(f'decoding.{name} must be {what}{allowed}, got {value!r}')


def _parse(field: dataclasses.Field, text: str) -> Any:
  """`text` as a value of `field`'s type, or `text` itself when it is not one (`check_value` then says so)."""
  text, kind = text.strip(), field.type
  if kind is bool:
    return {'true': True, 'false': False, '1': True, '0': False}.get(text.lower(), text)
  parse = {float: float, int: int, str: str}.get(kind, lambda s: tuple(int(v) for v in s.strip('[]()').split(',')))
  try:
    return parse(text)
  except ValueError:
    return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
  """['NAME=VALUE', ...] -> {name: value}, each name and value checked against the field's metadata.

  NAME may use dashes (top-p=0.9); VALUE is a number, true/false, a choice, or for decoding_steps comma-separated
  integers (20,10,10,10 or [20,10,10,10]). E.g. parse_overrides(['temp=2', 'decoding_steps=20,10,10,10']) ->
  {'temp': 2.0, 'decoding_steps': (20, 10, 10, 10)}.

  Raises:
    ValueError: one line naming the item and what is allowed.
  """
  values = {}
  for item in items:
    name, sep, text = item.partition('=')
    name = name.strip().replace('-', '_')
    if not sep or not name:
      raise ValueError(f'decoding override {item!r} is not NAME=VALUE (e.g. temp=3.0)')
    values[name] = check_value(name, _parse(check_name(name), text))
  return values


def check_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
  """`values` (field name -> value, e.g. keyword arguments) with each name and value checked."""
  return {name: check_value(name, value) for name, value in values.items()}


def check_config(config: MagnetConfig, decoding: DecodingConfig) -> None:
  """Raises ValueError for a causal LM, a decoding_steps/n_q mismatch or top_k > card."""
  if config.causal:
    raise ValueError('MAGNeT decoding needs a non-causal LM config (causal=True is the autoregressive rescorer)')
  if len(decoding.decoding_steps) != config.n_q:
    raise ValueError(f'decoding.decoding_steps has {len(decoding.decoding_steps)} entries for n_q={config.n_q} '
                     'levels')
  if decoding.top_k > config.card:
    raise ValueError(f'decoding.top_k={decoding.top_k} exceeds card={config.card}')


def output_length(length: int, span_len: int, span_arrangement: str) -> int:
  """Frames generated for a requested `length`: non-overlapping spans trim it to a multiple of span_len."""
  return (length // span_len) * span_len if span_len > 1 and span_arrangement == 'nonoverlap' else length

