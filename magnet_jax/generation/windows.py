"""Where the decoding windows go when the frames to generate do not fit in one model window.

Every window has the same length W (one compiled program) and decodes the unknown frames inside it, keeping the
known ones (given audio, or frames decoded by earlier windows) fixed. A long unknown run is swept left to right,
each window starting `overlap` frames before the first unknown frame, so it continues the previous window's tail
(long form, continuation); a run that fits with room to spare is centred, so it sees as much known context on its
right as on its left (infilling). Windows never leave [0, T).

Shapes: T frames (the whole piece), W frames per window.
"""
import itertools

import numpy as np


def plan(known: np.ndarray, window: int, overlap: int, reverse: bool = False) -> list[int]:
  """Start frames of the windows that decode every unknown frame, in decoding order.

  Args:
    known: [T] bool, the frames given.
    window: W (<= T).
    overlap: known frames kept before a long unknown run (0 <= overlap < W).
    reverse: sweep right to left (outpainting to the left): the plan of the mirrored problem, mirrored back.

  Returns:
    One start per window (empty when every frame is known).
  """
  total = known.shape[-1]
  if not 0 < window <= total or not 0 <= overlap < window:
    raise ValueError(f'need 0 < window ({window}) <= frames ({total}) and 0 <= overlap ({overlap}) < window')
  if reverse:
    return [total - window - start for start in plan(known[::-1], window, overlap)]
  # The unknown runs [run_starts[i], run_ends[i]), found in one pass. Window starts only grow, and everything
  # before a window's end is then known, so each window needs one binary search: linear time in all.
  padded = np.concatenate([[True], np.asarray(known, bool), [True]])
  edges = np.flatnonzero(padded[1:] != padded[:-1])
  run_starts, run_ends = edges[0::2], edges[1::2]
  starts, covered = [], 0  # every frame before `covered` is known or decoded
  while True:
    index = int(np.searchsorted(run_ends, covered, side='right'))
    if index == len(run_ends):
      return starts
    first = max(int(run_starts[index]), covered)
    run = int(run_ends[index]) - first
    before = (window - run) // 2 if run <= window - overlap else overlap
    start = min(max(first - before, 0), total - window)
    starts.append(start)
    covered = start + window


def scheduled_plan(total: int, window: int, overlap: int, prefix: int,
                   changes: list[int]) -> tuple[list[int], list[int]]:
  """`plan` of a piece whose frames [0, P) are given and the rest generated left to right, with a new window at
  every frame in `changes` (where a prompt schedule changes its text).

  Each segment between changes is swept as long form. A segment's first window starts `overlap` frames before it
  (those frames given) and decodes from its first frame on, again where the previous segment's last window reached
  past it: the new text takes over exactly at its frame, continuing what precedes it. Without changes this is
  `plan` of the same piece.

  Returns:
    (starts, fresh): each window's start and the first frame it decodes (the frames of the window from there on
    are decoded; those before it are given).
  """
  if not 0 < window <= total or not 0 <= overlap < window:
    raise ValueError(f'need 0 < window ({window}) <= frames ({total}) and 0 <= overlap ({overlap}) < window')
  bounds = [prefix] + [c for c in changes if prefix < c < total] + [total]
  starts, fresh = [], []
  for first, end in itertools.pairwise(bounds):
    while first < end:
      start = min(max(first - overlap, 0), total - window)
      starts.append(start)
      fresh.append(first)
      first = start + window
  return starts, fresh


def stream_cuts(starts: list[int], window: int, total: int, prefix: int,
                fresh: list[int] | None = None) -> tuple[int, list[tuple[int, int]]]:
  """Which frames' audio a left-to-right stream takes from each window.

  Window i's audio (decoded with its codes) is emitted from the middle of its overlap with window i - 1 to the
  middle of its overlap with window i + 1, so at each cut both windows' codec decodes have half an overlap of
  identical tokens on either side. Frames before the first window are known (a long audio prompt): they are
  decoded from the prefix alone, up to the middle of the first window's overlap with it.

  Args:
    starts: `plan` of a known prefix (ascending).
    window: W.
    total: T.
    prefix: P, the known frames [0, P) (P >= starts[0]).
    fresh: the first frame each window decodes (`scheduled_plan`; default: where the previous window ended): the
      tokens two windows share end there, and the cut goes to the middle of what they share.

  Returns:
    (frames [0, first) to emit from the prefix's own decode, then [(a, b)] per window).
  """
  first = (starts[0] + prefix) // 2 if starts[0] > 0 else 0
  fresh = [start + window for start in starts[:-1]] if fresh is None else fresh[1:]
  ends = [(following + min(start + window, new)) // 2
          for start, following, new in zip(starts[:-1], starts[1:], fresh, strict=True)]
  ends.append(total)
  return first, list(zip([first] + ends[:-1], ends, strict=True))
