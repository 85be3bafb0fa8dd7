"""Training an EnCodec codec on the procedural corpus: the project's 'train your own codec' path.

  python -m magnet_jax.apps.codec_train --config=configs/codec_default.py --workdir=DIR [--resume]
      [--export-dir=magnet_jax/assets/default/codec] [--config.train.num_steps=...]

Losses as audiocraft's compression solver without the adversary: waveform L1 + multi-scale mel + RVQ commitment,
a plain weighted sum (`config.losses`; audiocraft's gradient balancer only matters with adversarial losses, which
are not implemented). The codebooks are not trained by gradient: k-means on the first batch initialises them and
EMA updates with dead-code replacement follow them (`magnet_jax.codec.codebook`).

The workdir gets orbax checkpoints of the full train state (`checkpoints/`, for `--resume`), `metrics.jsonl`, and
`codec/`: the latest codec folder (`magnet_jax.codec.io`), rewritten atomically at every evaluation.
"""
import os
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from magnet_jax.codec import codebook, io, losses
from magnet_jax.codec.config import CodecConfig
from magnet_jax.codec.model import EncodecModel, Params, init
from magnet_jax.corpus.clips import ClipSet, random_crops, read_split, render_split
from magnet_jax.evaluation.codec import mean_mel_distance
from magnet_jax.training import loop
from magnet_jax.training.checkpointing import abstract_like
from magnet_jax.training.optim import check_optim, make_optimizer


@flax.struct.dataclass
class CodecTrainState:
  """Everything a codec training step updates (a pytree, checkpointed as a whole)."""
  step: jax.Array                 # int32 scalar: optimizer steps taken
  params: Params                  # EncodecModel params; params['quantizer']['codebooks'] [K, V, D] follow `stats`
  opt_state: Any                  # optax state (the codebooks' part is empty)
  stats: codebook.CodebookStats   # EMA statistics of the codebooks


# What a --resume may override (see trainer.RESUME_MAY_CHANGE).
RESUME_MAY_CHANGE = ('train.num_steps', 'train.log_every', 'train.eval_every', 'train.checkpoint_every',
                     'train.max_checkpoints', 'data.eval_clips')


def validate(config: ml_collections.ConfigDict) -> CodecConfig:
  """Checks a full config once, after command-line overrides; returns the codec architecture."""
  try:
    codec = CodecConfig(**config.codec.to_dict())
  except TypeError as e:
    raise ValueError(f'config.codec: {e}') from e
  train = config.train
  for key in ('batch_size', 'num_steps', 'log_every', 'eval_every', 'checkpoint_every', 'max_checkpoints'):
    if int(train[key]) < 1:
      raise ValueError(f'train.{key} must be >= 1, got {train[key]}')
  check_optim(config.optim)
  if train.segment_duration * codec.sample_rate < codec.hop_length:
    raise ValueError(f'train.segment_duration={train.segment_duration} is shorter than one codec frame')
  if not 0.0 < config.rvq.decay < 1.0:
    raise ValueError(f'rvq.decay must be in (0, 1), got {config.rvq.decay}')
  if min(config.losses.values()) < 0 or not any(config.losses.values()):
    raise ValueError(f'config.losses weights must be >= 0 and not all 0, got {config.losses.to_dict()}')
  if not 2 <= config.msspec.range_start < config.msspec.range_end:
    raise ValueError('msspec needs 2 <= range_start < range_end')
  return codec


def load_clips(config: ml_collections.ConfigDict, split: str, sample_rate: int, limit: int | None = None) -> ClipSet:
  """The corpus split named by config.data: rendered in memory, or read from data.corpus_dir when set."""
  data = config.data
  if data.corpus_dir:
    return read_split(data.corpus_dir, split, sample_rate, limit)
  return render_split(split, data.seed, data.num_clips, sample_rate, data.duration, limit)


def make_codec_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """config.optim (Adam/AdamW + schedule, `magnet_jax.training.optim`) on every parameter except the codebooks."""
  labels = lambda params: jax.tree_util.tree_map_with_path(
      lambda path, _: 'codebooks' if path[-1].key == 'codebooks' else 'trained', params)
  return optax.multi_transform({'trained': make_optimizer(config.optim, config.train.num_steps),
                                'codebooks': optax.set_to_zero()}, labels)


def reconstruction_losses(config: ml_collections.ConfigDict, codec: CodecConfig, params: Params,
                          audio: jax.Array) -> tuple[jax.Array, tuple[dict, jax.Array, jax.Array]]:
  """The weighted training loss of a batch audio [B, C, N].

  Returns:
    (loss, (per-term losses, latent [B, T, D], codes [B, K, T])).
  """
  out = EncodecModel(codec).apply({'params': params}, audio)
  terms = {
      'l1': jnp.mean(jnp.abs(out.audio - audio)),
      'msspec': losses.multiscale_mel_loss(out.audio, audio, codec.sample_rate, **config.msspec),
      'commitment': losses.commitment_loss(out.latent, params['quantizer']['codebooks'], out.codes),
  }
  loss = sum(config.losses[name] * value for name, value in terms.items())
  return loss, (terms, out.latent, out.codes)


def make_train_step(config: ml_collections.ConfigDict, codec: CodecConfig, optimizer: optax.GradientTransformation):
  """The jitted step (state, audio [B, C, N], rng) -> (state, metrics); the state is donated."""
  rvq = config.rvq

  def step_fn(state: CodecTrainState, audio: jax.Array, rng: jax.Array):
    grad_fn = jax.value_and_grad(lambda p: reconstruction_losses(config, codec, p, audio), has_aux=True)
    (loss, (terms, latent, codes)), grads = grad_fn(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    codebooks, stats = codebook.ema_update(
        jax.random.fold_in(rng, state.step), state.params['quantizer']['codebooks'], state.stats, latent, codes,
        rvq.decay, rvq.epsilon, rvq.threshold_ema_dead_code)
    params = {**params, 'quantizer': {**params['quantizer'], 'codebooks': codebooks}}
    metrics = dict(terms, loss=loss, grad_norm=optax.tree.norm(grads),
                   dead_codes=codebook.dead_fraction(stats, rvq.threshold_ema_dead_code))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, stats=stats), metrics

  return jax.jit(step_fn, donate_argnums=0)


def initial_state(config: ml_collections.ConfigDict, codec: CodecConfig, optimizer: optax.GradientTransformation,
                  rng: jax.Array, audio: jax.Array | None) -> CodecTrainState:
  """Random params whose codebooks are k-means fits of the latents of `audio` [B, C, N] (the first batch).

  With audio None the codebooks stay random and the statistics zero (the shape of a state, for restoring).
  """
  init_rng, kmeans_rng = jax.random.split(rng)
  params = init(init_rng, codec)
  stats = codebook.CodebookStats(cluster_size=jnp.zeros((codec.n_q, codec.bins)),
                                 embed_avg=jnp.zeros((codec.n_q, codec.bins, codec.dimension)))
  if audio is not None:
    @jax.jit
    def fit(params, audio, rng):
      latent = EncodecModel(codec).apply({'params': params}, audio).latent
      return codebook.kmeans_init(rng, latent, codec.n_q, codec.bins, config.rvq.kmeans_iters)
    codebooks, stats = fit(params, audio, kmeans_rng)
    params = {**params, 'quantizer': {'codebooks': codebooks}}
  return CodecTrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params), stats=stats)


def _batch(config: ml_collections.ConfigDict, clips: ClipSet, stream: int, step: int, batch_size: int,
           length: int) -> np.ndarray:
  """The crops of `step` of `stream` (0: training, 1: k-means): a function of (seed, stream, step) only, so a
  resumed run sees the same data."""
  return random_crops(clips, np.random.default_rng([config.train.seed, stream, step]), batch_size, length)


def train_codec(config: ml_collections.ConfigDict, workdir: str, resume: bool = False,
                export_dir: str | None = None) -> dict:
  """Trains a codec from `config` in `workdir`; returns the last logged metrics (with `valid_mel_distance`).

  Args:
    config: a full config (see configs/codec_default.py).
    workdir: output folder (checkpoints/, metrics.jsonl, codec/); must not hold checkpoints unless `resume`.
    resume: continue from the latest checkpoint (the same data and randomness as an uninterrupted run).
    export_dir: also write the final codec folder there (e.g. magnet_jax/assets/default/codec).
  """
  codec = validate(config)
  num_steps = int(config.train.num_steps)
  length = int(round(config.train.segment_duration * codec.sample_rate))
  checkpointer = loop.open_checkpointer(workdir, config.train, resume)
  loop.check_resume_config(workdir, config, resume, RESUME_MAY_CHANGE)
  logging.info('loading corpus clips (%s)', config.data.corpus_dir or f'rendered, seed {config.data.seed}')
  train_clips = load_clips(config, 'train', codec.sample_rate)
  valid_clips = load_clips(config, 'valid', codec.sample_rate, limit=config.data.eval_clips)
  optimizer = make_codec_optimizer(config)
  rng = jax.random.key(config.train.seed)
  if resume:
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.eval_shape(lambda: initial_state(config, codec, optimizer, rng, None))
    state, _ = checkpointer.restore(abstract_like(abstract, jax.tree.map(lambda _: device, abstract)))
  else:
    first_batch = _batch(config, train_clips, 1, 0, config.rvq.kmeans_batch_size, length)
    state = initial_state(config, codec, optimizer, rng, jnp.asarray(first_batch))
  train_step = make_train_step(config, codec, optimizer)
  first = int(state.step)
  logging.info('training codec %s: %d params, %d train / %d valid clips, steps %d -> %d', workdir,
               sum(x.size for x in jax.tree.leaves(state.params)), len(train_clips.audio), len(valid_clips.audio),
               first, num_steps)
  summary: dict = {}
  pending: list[dict] = []
  progress = loop.Progress(workdir, first, num_steps, 'codec')
  for step in range(first, num_steps):
    batch = _batch(config, train_clips, 0, step, config.train.batch_size, length)
    state, metrics = train_step(state, jnp.asarray(batch), rng)
    pending.append(metrics)
    done = step + 1
    progress.step()
    if all(done % config.train[k] for k in ('log_every', 'eval_every', 'checkpoint_every')) and done != num_steps:
      continue
    summary = loop.mean_metrics(jax.device_get(pending), range(done - len(pending) + 1, done + 1), 'codec training')
    pending = []
    rate = progress.rate(done)
    summary.update(step=done, steps_per_s=rate)
    if done % config.train.eval_every == 0 or done == num_steps:
      summary['valid_mel_distance'] = mean_mel_distance(codec, state.params, valid_clips)
      io.save_codec(os.path.join(workdir, 'codec'), codec, state.params, step=done,
                    valid_mel_distance=summary['valid_mel_distance'])
      progress.exclude()  # evaluation time does not count against the training rate
    progress.log(summary, loss=f'{summary["loss"]:.4f}', steps_s=f'{rate:.2f}')
    logging.info('step %d/%d loss %.4f (%s) dead %.2f | %.2f steps/s ETA %.0f min%s', done, num_steps,
                 summary['loss'], ' '.join(f'{k} {summary[k]:.4f}' for k in ('l1', 'msspec', 'commitment')),
                 summary['dead_codes'], rate, progress.eta(done, rate) / 60,
                 f' | valid mel_distance {summary["valid_mel_distance"]:.2f} dB' if 'valid_mel_distance' in summary
                 else '')
    checkpointer.save(done, state, {'step': done}, force=done == num_steps)
  progress.close()
  checkpointer.wait()
  checkpointer.close()
  if export_dir:
    io.save_codec(export_dir, codec, state.params, step=num_steps, valid_mel_distance=summary.get('valid_mel_distance'))
  return summary

