"""Learning the RVQ codebooks without gradients: k-means initialisation, EMA updates, dead-code replacement.

As audiocraft's `EuclideanCodebook` (quantization/core_vq.py): codebook k is fitted to the residual left by
codebooks 0 .. k-1; k-means on the first batch initialises it; every training step then moves each entry to an
exponential moving average of the vectors assigned to it (Laplace-smoothed counts); entries whose average count
per batch falls below `threshold_ema_dead_code` are replaced by random vectors of the current batch.

One deliberate difference: audiocraft writes the replacement into `embed` only, and the EMA step that follows
overwrites it from the untouched statistics, so its replaced codes stay dead. Here the statistics of a replaced
entry are reset too (count = threshold, sum = threshold * new vector), as in lucidrains' vector-quantize-pytorch.

Shapes: K codebooks, V entries (bins), D dimension, M vectors (B * T flattened), B batch, T frames.
"""
import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class CodebookStats:
  """EMA statistics of every codebook; a pytree saved with the train state."""
  cluster_size: jax.Array  # [K, V] float32: average count of vectors assigned to each entry per batch
  embed_avg: jax.Array     # [K, V, D] float32: average sum of the vectors assigned to each entry per batch


def _sample(rng: jax.Array, samples: jax.Array, num: int) -> jax.Array:
  """num rows of samples [M, D]: without replacement when M >= num (audiocraft `sample_vectors`)."""
  if samples.shape[0] >= num:
    return samples[jax.random.permutation(rng, samples.shape[0])[:num]]
  return samples[jax.random.randint(rng, (num,), 0, samples.shape[0])]


def _assign(codebook: jax.Array, samples: jax.Array) -> jax.Array:
  """Nearest entry of codebook [V, D] for samples [M, D] -> [M] int32."""
  dist = jnp.sum(samples ** 2, -1, keepdims=True) - 2 * samples @ codebook.T + jnp.sum(codebook ** 2, -1)
  return jnp.argmin(dist, axis=-1).astype(jnp.int32)


def kmeans(rng: jax.Array, samples: jax.Array, num_clusters: int, num_iters: int) -> tuple[jax.Array, jax.Array]:
  """Lloyd's k-means from randomly drawn samples; clusters left empty keep their previous mean.

  Args:
    rng: picks the initial means.
    samples: [M, D].
    num_clusters: V.
    num_iters: Lloyd iterations.

  Returns:
    means [V, D] and the sizes of the last assignment [V] (float32).
  """
  def step(_, carry):
    means, _ = carry
    onehot = jax.nn.one_hot(_assign(means, samples), num_clusters, dtype=samples.dtype)  # [M, V]
    counts = onehot.sum(0)
    new_means = (onehot.T @ samples) / jnp.maximum(counts, 1.0)[:, None]
    return jnp.where(counts[:, None] > 0, new_means, means), counts

  means = _sample(rng, samples, num_clusters)
  return jax.lax.fori_loop(0, num_iters, step, (means, jnp.zeros((num_clusters,), samples.dtype)))


def _flat(latent: jax.Array) -> jax.Array:
  """[B, T, D] -> [B * T, D] float32, without gradient."""
  return jax.lax.stop_gradient(latent).astype(jnp.float32).reshape(-1, latent.shape[-1])


def kmeans_init(rng: jax.Array, latent: jax.Array, n_q: int, bins: int,
                num_iters: int) -> tuple[jax.Array, CodebookStats]:
  """Codebooks fitted layer by layer by k-means to the residuals of a batch of latents (audiocraft `init_embed_`).

  Args:
    rng: PRNG key.
    latent: [B, T, D] encoder outputs.
    n_q: codebooks K.
    bins: entries per codebook V.
    num_iters: k-means iterations (`kmeans_iters`).

  Returns:
    codebooks [K, V, D] and their statistics (cluster sizes from the k-means, sums = size * mean).
  """
  residual = _flat(latent)
  codebooks, counts = [], []
  for k in range(n_q):
    means, size = kmeans(jax.random.fold_in(rng, k), residual, bins, num_iters)
    residual = residual - means[_assign(means, residual)]
    codebooks.append(means)
    counts.append(size)
  codebooks, counts = jnp.stack(codebooks), jnp.stack(counts)
  return codebooks, CodebookStats(cluster_size=counts, embed_avg=codebooks * counts[..., None])


def ema_update(rng: jax.Array, codebooks: jax.Array, stats: CodebookStats, latent: jax.Array, codes: jax.Array,
               decay: float, epsilon: float, threshold_ema_dead_code: float) -> tuple[jax.Array, CodebookStats]:
  """One training step of every codebook: dead-code replacement, then the EMA update of counts, sums and entries.

  Assignments are the forward pass's codes (made with the codebooks before this update), as in audiocraft.

  Args:
    rng: draws the replacement vectors.
    codebooks: [K, V, D] used by the forward pass.
    stats: their statistics.
    latent: [B, T, D] encoder outputs of the batch (no gradient flows).
    codes: [B, K, T] int32 the forward pass chose for them.
    decay: EMA decay (`decay`, 0.99 in audiocraft's EnCodec).
    epsilon: Laplace smoothing of the counts.
    threshold_ema_dead_code: entries with a smaller average count per batch are replaced; 0 disables.

  Returns:
    The new codebooks [K, V, D] and statistics.
  """
  residual = _flat(latent)
  bins = codebooks.shape[1]
  new_codebooks, sizes, sums = [], [], []
  for k in range(codebooks.shape[0]):
    index = codes[:, k].reshape(-1)  # [M], in the order of _flat
    onehot = jax.nn.one_hot(index, bins, dtype=jnp.float32)  # [M, V]
    size, embed_sum = stats.cluster_size[k], stats.embed_avg[k]
    if threshold_ema_dead_code > 0:
      dead = size < threshold_ema_dead_code
      fresh = _sample(jax.random.fold_in(rng, k), residual, bins)
      size = jnp.where(dead, threshold_ema_dead_code, size)
      embed_sum = jnp.where(dead[:, None], fresh * threshold_ema_dead_code, embed_sum)
    size = decay * size + (1 - decay) * onehot.sum(0)
    embed_sum = decay * embed_sum + (1 - decay) * (onehot.T @ residual)
    smoothed = (size + epsilon) / (size.sum() + bins * epsilon) * size.sum()
    new_codebooks.append(embed_sum / smoothed[:, None])
    sizes.append(size)
    sums.append(embed_sum)
    residual = residual - codebooks[k][index]
  return jnp.stack(new_codebooks), CodebookStats(cluster_size=jnp.stack(sizes), embed_avg=jnp.stack(sums))


def dead_fraction(stats: CodebookStats, threshold_ema_dead_code: float) -> jax.Array:
  """Share of entries, over all codebooks, whose average count is below the threshold (a training metric)."""
  return jnp.mean(stats.cluster_size < threshold_ema_dead_code)
