"""Token sampling exactly as audiocraft's `utils.sample_top_p` / `sample_top_k` / `multinomial`, with static shapes.

All functions take probabilities over the last axis (V) and return int32 tokens without that axis. JAX's PRNG
replaces torch's, so sampled runs match the reference in distribution, not token for token.
"""
import jax
import jax.numpy as jnp


def multinomial(rng: jax.Array, probs: jax.Array) -> jax.Array:
  """One draw per row from (possibly unnormalised, non-negative) probs [..., V] -> [...] int32.

  Inverse-CDF sampling with one uniform per row: the first token whose cumulative mass exceeds u * total. Exact in
  distribution (zero-probability tokens are never drawn) and, on CPU, far cheaper than Gumbel-max over V logits.
  """
  cumulative = jnp.cumsum(probs.astype(jnp.float32), axis=-1)
  u = jax.random.uniform(rng, probs.shape[:-1]) * cumulative[..., -1]
  return jnp.minimum(jnp.sum(cumulative <= u[..., None], axis=-1), probs.shape[-1] - 1).astype(jnp.int32)


def nucleus_threshold(probs: jax.Array, p: float) -> jax.Array:
  """[..., V] -> [...]: the smallest probability in the top-p nucleus, found by bisection instead of a sort.

  Token x is in the nucleus iff the mass of the tokens more probable than x is <= p. That mass decreases as
  prob(x) grows, so the nucleus is {x : prob(x) >= threshold}. The threshold is found exactly by bisecting over
  float32 bit patterns (ordered like the non-negative floats they encode): 31 masked sums over V, several times
  cheaper than sorting V on CPU.
  """
  probs = probs.astype(jnp.float32)
  as_float = lambda bits: jax.lax.bitcast_convert_type(bits, jnp.float32)
  mass_above = lambda tau: jnp.sum(jnp.where(probs > tau[..., None], probs, 0.0), axis=-1)

  def bisect(_, bounds):
    low, high = bounds  # the threshold's bit pattern lies in [low, high]
    mid = low + (high - low) // 2
    inside = mass_above(as_float(mid)) <= p
    return jnp.where(inside, low, mid + 1), jnp.where(inside, mid, high)

  high = jax.lax.bitcast_convert_type(jnp.max(probs, axis=-1), jnp.int32)  # no mass above the maximum
  _, high = jax.lax.fori_loop(0, 31, bisect, (jnp.zeros_like(high), high))
  return as_float(high)


def sample_top_p(rng: jax.Array, probs: jax.Array, p: float) -> jax.Array:
  """Nucleus sampling: keep the most probable tokens whose mass before them is <= p, renormalise, draw.

  audiocraft keeps token i (in descending order) iff cumsum_i - probs_i <= p, so the most probable token is
  always kept and the nucleus is the smallest prefix with mass > p. Tokens tied in probability at the nucleus
  boundary are all kept (torch's unstable sort keeps an arbitrary subset of them).
  """
  return multinomial(rng, jnp.where(probs >= nucleus_threshold(probs, p)[..., None], probs, 0.0))


def top_k_probs(probs: jax.Array, k: int) -> jax.Array:
  """probs [..., V] restricted to values >= the k-th largest (ties kept, as audiocraft) and renormalised."""
  kth = jax.lax.top_k(probs, k)[0][..., -1:]
  kept = jnp.where(probs >= kth, probs, 0.0)
  return kept / kept.sum(axis=-1, keepdims=True)


def sample(rng: jax.Array, logits: jax.Array, probs: jax.Array, *, use_sampling: bool, top_k: int,
           top_p: float) -> tuple[jax.Array, jax.Array]:
  """audiocraft's per-token choice in MAGNeT's `_generate_stage` and LMModel's `_sample_next_token`.

  Args:
    rng: PRNG key.
    logits: [..., V] guided logits (argmax when not sampling).
    probs: [..., V] softmax(logits / temperature).
    use_sampling: False -> argmax of logits.
    top_k, top_p: top_p > 0 wins over top_k > 0; neither -> plain multinomial.

  Returns:
    (tokens [...] int32, token_probs [...] float32): the chosen tokens and their probability under `probs`, except
    with top-k, where audiocraft's in-place renormalisation makes it the renormalised top-k probability.
  """
  if not use_sampling:
    tokens = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  elif top_p > 0.0:
    tokens = sample_top_p(rng, probs, top_p)
  elif top_k > 0:
    probs = top_k_probs(probs, top_k)
    tokens = multinomial(rng, probs)
  else:
    tokens = multinomial(rng, probs)
  return tokens, jnp.take_along_axis(probs, tokens[..., None], axis=-1)[..., 0]
