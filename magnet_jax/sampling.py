"""Token sampling exactly as audiocraft's `utils.sample_top_p` / `sample_top_k` / `multinomial`, with static shapes.

All functions take probabilities over the last axis (V) and return int32 tokens without that axis. JAX's PRNG
replaces torch's, so sampled runs match the reference in distribution, not token for token.
"""
import jax
import jax.numpy as jnp


def multinomial(rng: jax.Array, probs: jax.Array) -> jax.Array:
  """One draw per row from (possibly unnormalised) probs [..., V] -> [...] int32."""
  return jax.random.categorical(rng, jnp.log(probs), axis=-1).astype(jnp.int32)


def sample_top_p(rng: jax.Array, probs: jax.Array, p: float) -> jax.Array:
  """Nucleus sampling: keep the most probable tokens whose mass before them is <= p, renormalise, draw.

  audiocraft keeps token i (in descending order) iff cumsum_i - probs_i <= p, so the most probable token is
  always kept and the nucleus is the smallest prefix with mass > p.
  """
  order = jnp.argsort(probs, axis=-1, descending=True)
  sorted_probs = jnp.take_along_axis(probs, order, axis=-1)
  outside = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs > p
  sorted_probs = jnp.where(outside, 0.0, sorted_probs)
  choice = multinomial(rng, sorted_probs / sorted_probs.sum(axis=-1, keepdims=True))
  return jnp.take_along_axis(order, choice[..., None], axis=-1)[..., 0]


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
