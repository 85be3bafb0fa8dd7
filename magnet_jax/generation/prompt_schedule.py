"""Prompt schedules: text that changes over a piece, as [(seconds, text), ...] from 0 s on.

A description is a text, None (unconditional) or a schedule; `entries` turns any of them into a checked schedule.
Long-form generation conditions each window on the text in force at the first frame it decodes, and starts a new
window at every change (`windows.scheduled_plan`), so a change lands on its frame. On the command line an entry is
`--prompt "SECONDS:TEXT"` only with `--schedule` (a plain `--prompt` may contain colons); in a JSONL prompts file it
is a "schedule" field, [[seconds, text], ...].
"""
import itertools
from collections.abc import Sequence

Schedule = tuple[tuple[float, str | None], ...]  # (start seconds, text) ascending, the first at 0
Description = str | None | Sequence[tuple[float, str | None]]
MAX_SECONDS = 1e6  # latest schedule time (far past any duration a command or the server accepts)


def entries(description: Description) -> Schedule:
  """A text, None or a list of (seconds, text) -> its schedule.

  Raises:
    ValueError: an empty schedule, a time that is not a finite number in [0, MAX_SECONDS], an entry with empty
      text (refused like an empty prompt; None is an explicitly unconditional entry), times not strictly
      increasing, or a first entry after 0 s (what would play before it?).
  """
  if description is None or isinstance(description, str):
    return ((0.0, description),)
  items = list(description)
  if not items:
    raise ValueError('a prompt schedule needs at least one (seconds, text) entry')
  schedule = []
  for item in items:
    try:
      seconds, text = item
      seconds = float(seconds)
    except (TypeError, ValueError) as e:
      raise ValueError(f'a prompt schedule entry must be (seconds, text), got {item!r}') from e
    if text is not None and not isinstance(text, str):
      raise ValueError(f'a prompt schedule entry must be (seconds, text), got {item!r}')
    if not 0 <= seconds <= MAX_SECONDS:  # NaN fails too
      raise ValueError(f'a prompt schedule time must be a finite number of seconds in [0, {MAX_SECONDS:g}], got '
                       f'{seconds!r} in {item!r}')
    if text is not None and not text.strip():
      raise ValueError(f'a prompt schedule entry has empty text ({seconds:g}: {text!r}): it would generate '
                       'unconditionally without saying so')
    schedule.append((seconds, text))
  times = [seconds for seconds, _ in schedule]
  if times[0] != 0 or any(b <= a for a, b in itertools.pairwise(times)):
    raise ValueError(f'a prompt schedule must start at 0 s and its times increase strictly, got {times}')
  return tuple(schedule)


def text_at(schedule: Schedule, seconds: float) -> str | None:
  """The text in force at `seconds`."""
  return [text for start, text in schedule if start <= seconds][-1]


def change_frames(schedules: Sequence[Schedule], frame_rate: float, total: int) -> list[int]:
  """Frames (ascending, within (0, T)) where any schedule of a batch changes its text."""
  frames = {round(seconds * frame_rate) for schedule in schedules for seconds, _ in schedule[1:]}
  return sorted(frame for frame in frames if 0 < frame < total)


def describe(schedule: Schedule) -> str:
  """A schedule as one line: its text, or 'SECONDS:TEXT | SECONDS:TEXT ...'."""
  if len(schedule) == 1:
    return schedule[0][1] or ''
  return ' | '.join(f'{seconds:g}:{text or ""}' for seconds, text in schedule)


def parse_entry(text: str) -> tuple[float, str]:
  """'SECONDS:TEXT' (a --schedule --prompt) -> (seconds, text).

  Raises:
    ValueError: no 'SECONDS:' prefix.
  """
  seconds, sep, rest = text.partition(':')
  try:
    if not sep:
      raise ValueError
    return float(seconds), rest.strip()
  except ValueError as e:
    raise ValueError(f'with --schedule each --prompt is SECONDS:TEXT (e.g. "30:add drums"), got {text!r}') from e
