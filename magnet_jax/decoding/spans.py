"""Which spans MAGNeT re-masks at a decoding step, with static shapes (audiocraft's `_generate_stage` and
`_least_probable_span_masking`).

Scores are re-masking priorities: higher = less confident = masked first. Selections that torch makes with
`topk` / `argsort` of a data-dependent count are made here by ranking (a stable descending sort: equal scores
are taken in index order) and comparing ranks with a traced count. torch's CPU sort is stable only up to 16
entries, so equal scores at the selection boundary may be taken in another order there; during decoding, exact
ties only occur among spans frozen at DONT_REMASK_SCORE, which the selection does not reach.
"""
import jax
import jax.numpy as jnp


def descending_ranks(scores: jax.Array) -> jax.Array:
  """[..., N] -> int32 [..., N]: position of each entry in a stable descending sort (0 = highest score)."""
  order = jnp.argsort(scores, axis=-1, descending=True, stable=True)
  return jnp.argsort(order, axis=-1).astype(jnp.int32)


def top_k_mask(scores: jax.Array, k: jax.Array | int) -> jax.Array:
  """bool [..., N]: the k highest scores (k may be traced) — the set `scores.topk(k).indices` selects."""
  return descending_ranks(scores) < k


def span_scores(token_probs: jax.Array, span_len: int, span_scoring: str) -> jax.Array:
  """Non-overlapping span scores [B, T // span_len] from the sampled tokens' probabilities [B, T].

  'max': 1 - the span's highest probability; 'prod': the span's summed -log probability.
  """
  spans = token_probs.reshape(token_probs.shape[:-1] + (-1, span_len))
  if span_scoring == 'max':
    return 1 - spans.max(axis=-1)
  return (-jnp.log(spans)).sum(axis=-1)


def _round_half_even_halves(total: jax.Array) -> jax.Array:
  """Python's round(0.5 * total) for int arrays (ties to even)."""
  half = total // 2
  return half + (total % 2) * (half % 2)


def least_probable_span_mask(scores: jax.Array, num_masked: jax.Array | int, span_len: int) -> jax.Array:
  """audiocraft's stride-1 ('stride1') span masking, vectorised over the batch.

  Overlapping spans (every start t, length span_len) are scored by the sum of their frames' scores; the u
  highest-scoring spans are masked, with u found by audiocraft's binary search so that the masked frame count is
  close to num_masked (its exact iteration and rounding are reproduced, including returning the mask of the last
  u it evaluated).

  Args:
    scores: [B, T] per-frame scores (-log prob; DONT_REMASK for frozen frames).
    num_masked: target number of masked frames: a scalar or one per row [B] (may be traced).
    span_len: frames per span.

  Returns:
    bool [B, T].
  """
  batch, length = scores.shape
  num_spans = length - span_len + 1
  totals = scores[:, :num_spans]
  for offset in range(1, span_len):  # left-to-right, as torch sums the unfolded window
    totals = totals + scores[:, offset:offset + num_spans]
  ranks = descending_ranks(totals)
  # A frame is masked by the u best spans iff the best-ranked span covering it has rank < u.
  padded = jnp.pad(ranks, ((0, 0), (span_len - 1, span_len - 1)), constant_values=num_spans)
  cover = jnp.min(jnp.stack([padded[:, span_len - 1 - d:span_len - 1 - d + length] for d in range(span_len)]), 0)

  def count(u: jax.Array) -> jax.Array:
    return jnp.sum(cover < u[:, None], axis=-1)

  target = jnp.broadcast_to(jnp.maximum(jnp.asarray(num_masked, jnp.int32), span_len), (batch,))
  low = target // span_len
  high = target - span_len + 1
  mid = _round_half_even_halves(low + high)

  def searching(state):
    low, high, mid, _ = state
    return jnp.any((low < mid) & (mid < high))

  def bisect(state):
    low, high, mid, last = state
    active = (low < mid) & (mid < high)
    too_many = count(mid) > target
    high = jnp.where(active & too_many, mid, high)
    low = jnp.where(active & ~too_many, mid, low)
    return low, high, jnp.where(active, _round_half_even_halves(low + high), mid), jnp.where(active, mid, last)

  *_, last = jax.lax.while_loop(searching, bisect, (low, high, mid, mid))
  return cover < last[:, None]
