"""What to generate and where it goes: prompts (flags or a prompts file) -> one `Output` per output file.

Prompt files: `.txt`, one prompt per line (blank lines and lines starting with '#' are skipped); or `.jsonl`, one
JSON object per line with "description" (or "prompt") and optionally "seed" (int >= 0) and "duration" (seconds > 0,
finite) overriding --seed / --duration for that line, "negative" (a negative prompt) and "schedule" ([[seconds,
text], ...], a prompt schedule, `prompt_schedule`; it replaces "description"). Sample j of a prompt uses its seed + j.
Output files are named `<prompt-slug>_<seed>.<ext>` after the seed of the audio they hold (best-of-N: the chosen
candidate's); names that would collide within a run get `-2`, `-3`, ... before the extension.
"""
import dataclasses
import json
import math
import os
import re
from collections.abc import Sequence

import numpy as np

from magnet_jax.generation import prompt_schedule

MAX_SEED = 2 ** 31  # seeds are int32 on the device
SLUG_CHARS = 60


@dataclasses.dataclass(frozen=True)
class Prompt:
  """One prompt as given: its text (a schedule's one-line form; None: unconditional generation), optional
  per-prompt seed and duration, a prompt schedule (replacing the text when given) and a negative prompt."""
  text: str | None
  seed: int | None = None
  duration: float | None = None
  schedule: prompt_schedule.Schedule | None = None
  negative: str | None = None

  @classmethod
  def scheduled(cls, entries, **kwargs) -> 'Prompt':
    """A prompt of a schedule [(seconds, text), ...] (checked)."""
    schedule = prompt_schedule.entries(list(entries))
    return cls(prompt_schedule.describe(schedule), schedule=schedule, **kwargs)

  @property
  def description(self) -> prompt_schedule.Description:
    """What the pipeline conditions on: the schedule, or the text."""
    return self.schedule if self.schedule is not None else self.text


@dataclasses.dataclass(frozen=True)
class Output:
  """One output file: a prompt (None: unconditional), its seed (best-of-N: the first of its candidates' seeds
  seed, seed + 1, ...), a duration (None: the mode's default), and the file stem of each candidate seed (the file
  takes the stem of the seed it keeps)."""
  text: str | None
  seed: int
  duration: float | None
  stems: tuple[str, ...]
  schedule: prompt_schedule.Schedule | None = None
  negative: str | None = None

  @property
  def description(self) -> prompt_schedule.Description:
    return self.schedule if self.schedule is not None else self.text

  @property
  def stem(self) -> str:
    """The stem of the first candidate (the only one without best-of)."""
    return self.stems[0]

  def stem_of(self, seed: int) -> str:
    """The stem of the file holding candidate `seed`."""
    return self.stems[seed - self.seed]


def check_seeds(seed: int | Sequence[int], count: int) -> np.ndarray:
  """[count] int64 seeds: `seed + b` for an int, else the sequence itself; each an integer in [0, MAX_SEED).

  Raises:
    ValueError: not integers, another count, or out of range.
  """
  seeds = np.arange(count) + seed if np.ndim(seed) == 0 else np.asarray(seed)
  if (seeds.shape != (count,) or not np.issubdtype(seeds.dtype, np.integer)
      or not np.all((0 <= seeds) & (seeds < MAX_SEED))):
    raise ValueError(f'seeds must be {count} integers in [0, 2**31), got {seed}')
  return seeds


def read_prompts_file(path: str | os.PathLike) -> list[Prompt]:
  """Prompts of a .txt or .jsonl file (see the module docstring).

  Raises:
    FileNotFoundError: no such file; ValueError: another extension, or a bad line (named by its number).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'prompts file not found: {path}')
  kind = os.path.splitext(path)[1].lower()
  if kind not in ('.txt', '.jsonl'):
    raise ValueError(f'prompts file {path}: expected a .txt (one prompt per line) or .jsonl file')
  with open(path, encoding='utf-8') as f:
    lines = [(number, line.strip()) for number, line in enumerate(f, 1)]
  lines = [(number, line) for number, line in lines if line and not (kind == '.txt' and line.startswith('#'))]
  if kind == '.txt':
    return [Prompt(line) for _, line in lines]
  return [_json_prompt(line, f'{path}:{number}') for number, line in lines]


def _json_prompt(line: str, where: str) -> Prompt:
  try:
    entry = json.loads(line)
  except json.JSONDecodeError as e:
    raise ValueError(f'{where}: not valid JSON ({e.msg})') from e
  if not isinstance(entry, dict):
    raise ValueError(f'{where}: expected a JSON object')
  text = entry.get('description', entry.get('prompt'))
  seed, duration, negative = entry.get('seed'), entry.get('duration'), entry.get('negative')
  if negative is not None and not isinstance(negative, str):
    raise ValueError(f'{where}: "negative" must be a string, got {negative!r}')
  if seed is not None and not (isinstance(seed, int) and 0 <= seed < MAX_SEED):
    raise ValueError(f'{where}: "seed" must be an integer in [0, 2**31), got {seed!r}')
  if duration is not None and not (isinstance(duration, int | float) and not isinstance(duration, bool)
                                   and 0 < duration < math.inf):
    raise ValueError(f'{where}: "duration" must be a finite number of seconds > 0, got {duration!r}')
  duration = None if duration is None else float(duration)
  if 'schedule' in entry:
    try:
      schedule = prompt_schedule.entries(entry['schedule'] if isinstance(entry['schedule'], list) else ())
    except ValueError as e:
      raise ValueError(f'{where}: "schedule" must be [[seconds, text], ...]: {e}') from e
    return Prompt(prompt_schedule.describe(schedule), seed, duration, schedule, negative)
  if not isinstance(text, str):
    raise ValueError(f'{where}: needs a "description" (or "prompt") string')
  return Prompt(text, seed, duration, negative=negative)


def slug(text: str | None) -> str:
  """A file-name-safe short form of a prompt: lowercase ASCII letters and digits joined by '-'."""
  if text is None:
    return 'unconditional'
  words = re.findall(r'[a-z0-9]+', text.lower())
  return '-'.join(words)[:SLUG_CHARS].rstrip('-') or 'untitled'


def expand(prompts: list[Prompt], seed: int, num_samples: int, duration: float | None,
           best_of: int = 1) -> list[Output]:
  """One output per prompt and sample, with collision-free stems. With `best_of` N, sample j of a prompt is chosen
  among the candidates of seeds seed + j * N ... seed + j * N + N - 1 (its output's seed is the first); each
  candidate seed has its own stem, so the file is named after the seed it keeps.

  Raises:
    ValueError: no prompts, an empty prompt (unconditional generation is asked for with a None prompt,
      `--unconditional`), num_samples < 1, or a seed out of range.
  """
  if not prompts:
    raise ValueError('no prompts: give --prompt TEXT (repeatable), --prompts-file FILE or --unconditional')
  for prompt in prompts:
    if prompt.text is not None and not prompt.text.strip():
      raise ValueError(f'empty prompt {prompt.text!r}: it would generate unconditionally without saying so; pass '
                       '--unconditional for that')
    if prompt.negative is not None and not prompt.negative.strip():
      raise ValueError(f'empty negative prompt {prompt.negative!r} (of {prompt.text!r}): leave it out instead')
  if num_samples < 1:
    raise ValueError(f'--num-samples must be >= 1, got {num_samples}')
  outputs, used = [], set()
  for prompt in prompts:
    first = seed if prompt.seed is None else prompt.seed
    for j in range(num_samples):
      seeds = range(first + j * best_of, first + j * best_of + best_of)
      check_seeds(seeds[-1], 1)
      copy, suffix = 1, ''
      while any(f'{slug(prompt.text)}_{s}{suffix}' in used for s in seeds):
        copy += 1
        suffix = f'-{copy}'
      stems = tuple(f'{slug(prompt.text)}_{s}{suffix}' for s in seeds)
      used.update(stems)
      outputs.append(Output(prompt.text, seeds[0], prompt.duration or duration, stems, prompt.schedule,
                            prompt.negative))
  return outputs
