"""A fixed, deterministic set of synthetic examples: structured codes with per-example text states.

Each example's codes follow a pattern fixed by its index (a per-level arithmetic progression modulo card), and
its text states are random but fixed; a model can learn the set to near-zero loss, which makes it the overfit
check and the data source of smoke runs that need no audio.
"""
import numpy as np


def make_examples(num_examples: int, n_q: int, card: int, length: int, text_len: int, text_dim: int,
                  seed: int) -> dict[str, np.ndarray]:
  """'codes' int32 [E, K, T], 'cond' float32 [E, S, Dt], 'cond_mask' bool [E, S], 'padding_mask' bool [E, T]."""
  rng = np.random.default_rng(seed)
  start = rng.integers(0, card, size=(num_examples, n_q, 1))
  stride = rng.integers(1, card, size=(num_examples, n_q, 1))
  codes = (start + stride * np.arange(length)[None, None, :]) % card
  cond = rng.normal(size=(num_examples, text_len, text_dim)).astype(np.float32)
  lengths = rng.integers(1, text_len + 1, size=num_examples)
  cond_mask = np.arange(text_len)[None, :] < lengths[:, None]
  return {'codes': codes.astype(np.int32), 'cond': cond * cond_mask[..., None], 'cond_mask': cond_mask,
          'padding_mask': np.ones((num_examples, length), bool)}


class SyntheticSource:
  """Cycles through `make_examples(...)` in global batches of `batch_size`; yields this process's slice of each.

  Every process builds the same example set (from the same seed) and takes examples
  `process_index * local .. (process_index + 1) * local` of each global batch (`local = batch_size /
  process_count`), so N processes together see exactly the batches one process would. The position is global
  (examples consumed by all processes), so a checkpoint resumes on any process count.
  """

  def __init__(self, batch_size: int, process_index: int = 0, process_count: int = 1, **example_kwargs):
    if batch_size % process_count:
      raise ValueError(f'batch size {batch_size} is not divisible by the {process_count} processes')
    self._examples = make_examples(**example_kwargs)
    self._size = len(self._examples['codes'])
    self._batch_size = batch_size
    local = batch_size // process_count
    self._offsets = process_index * local + np.arange(local)
    self._position = 0

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    index = (self._position + self._offsets) % self._size
    self._position += self._batch_size
    return {k: v[index] for k, v in self._examples.items()}

  def get_state(self) -> dict:
    return {'position': int(self._position)}

  def set_state(self, state: dict) -> None:
    self._position = int(state['position'])
