"""The sharded training step and loop.

`train_step(state, batch, rng) -> (state, metrics)` is one `jax.jit` with explicit NamedShardings over a
('data', 'model') mesh; the same code runs on 1 CPU, simulated CPU devices, GPUs and TPU pods.
"""
import functools
import os
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from magnet_jax.data.sources import make_source
from magnet_jax.models import MagnetLM
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.params import boxed_init, init_params
from magnet_jax.parallel.sharding import batch_part, batch_sharding, make_mesh, param_shardings, replicated, rules_for
from magnet_jax.training import loop
from magnet_jax.training.checkpointing import Checkpointer, abstract_like
from magnet_jax.training.finetune import ADAPTER_FILE, FineTune
from magnet_jax.training.finetune import check_config as check_finetune
from magnet_jax.training.hooks import TrainingHooks
from magnet_jax.training.loss import masked_level_loss
from magnet_jax.training.optim import TrainState, check_optim, learning_rate_schedule, make_optimizer, update_ema


def validate(config: ml_collections.ConfigDict) -> MagnetConfig:
  """Checks a full config once, after command-line overrides; returns the model config. One clear error each."""
  model = MagnetConfig.from_dict(config.model.to_dict())
  if model.causal or model.codebooks_pattern != 'parallel':
    raise ValueError('train.py trains MAGNeT (model.causal=False, model.codebooks_pattern=parallel); the '
                     'Hybrid-MAGNeT / MusicGen objectives are not implemented')
  train = config.train
  for key in ('batch_size', 'num_steps', 'log_every', 'checkpoint_every', 'max_checkpoints'):
    if int(train[key]) < 1:
      raise ValueError(f'train.{key} must be >= 1, got {train[key]}')
  if not 0.0 <= train.cfg_dropout < 1.0:
    raise ValueError(f'train.cfg_dropout must be in [0, 1), got {train.cfg_dropout}')
  for key in ('merge_text_p', 'drop_desc_p', 'drop_other_p', 'word_dropout'):
    if not 0.0 <= config.data[key] <= 1.0:
      raise ValueError(f'data.{key} must be a probability in [0, 1], got {config.data[key]}')
  check_optim(config.optim)
  if train.batch_size % jax.process_count():
    raise ValueError(f'train.batch_size={train.batch_size} is not divisible by the {jax.process_count()} processes')
  check_finetune(config)
  FineTune(config, model)  # init / freezing / LoRA options
  return model


# What a --resume may override: the run's length and bookkeeping, input parallelism and the mesh (checkpoints
# restore into any sharding). num_steps also stretches the learning-rate schedule's decay to the new end.
RESUME_MAY_CHANGE = ('train.num_steps', 'train.log_every', 'train.checkpoint_every', 'train.max_checkpoints',
                     'data.worker_count', 'data.worker_buffer_size', 'sharding.')


def init_state(model: MagnetConfig, optimizer: optax.GradientTransformation, rng: jax.Array, ema: bool,
               boxed: bool = False, params_fn: Callable | None = None) -> TrainState:
  """A fresh TrainState: the one initialisation, traced by `eval_shape` for the shardings (`boxed`: params keep
  their logical axis names, and the optimizer moments inherit them) and jitted into them by `create_state`.
  `params_fn(rng, boxed)` initialises other trainable params than the model's (`FineTune.params_fn`: LoRA)."""
  if params_fn is not None:
    params = params_fn(rng, boxed)
  else:
    params = boxed_init(model, rng) if boxed else init_params(model, rng)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params),
                    ema_params=params if ema else None)


def state_shardings(model: MagnetConfig, optimizer: optax.GradientTransformation, mesh, rules, ema: bool,
                    params_fn: Callable | None = None):
  """NamedShardings for every TrainState leaf, from the params' logical axes."""
  abstract = jax.eval_shape(functools.partial(init_state, model, optimizer, ema=ema, boxed=True, params_fn=params_fn),
                            jax.random.key(0))
  return param_shardings(nn.get_partition_spec(abstract), nn.meta.unbox(abstract), mesh, rules)


def create_state(model: MagnetConfig, optimizer: optax.GradientTransformation, rng: jax.Array, shardings,
                 ema: bool, params_fn: Callable | None = None) -> TrainState:
  """A fresh TrainState created directly in its shardings (no host copy of the full params)."""
  return jax.jit(functools.partial(init_state, model, optimizer, ema=ema, params_fn=params_fn),
                 out_shardings=shardings)(rng)


def restore_state(config: ml_collections.ConfigDict, workdir: str, step: int | None = None) -> tuple[TrainState, dict]:
  """(train state, data state) of `workdir`'s checkpoint at `step` (default: latest), on this process's devices in
  `config`'s mesh and sharding preset (e.g. to export the trained params).

  Raises:
    FileNotFoundError: `workdir` holds no checkpoint.
  """
  model = validate(config)
  tuning = FineTune(config, model)
  mesh = make_mesh(config.sharding.mesh)
  optimizer = tuning.optimizer(make_optimizer(config.optim, config.train.num_steps))
  ema = bool(config.optim.ema_decay)
  shardings = state_shardings(model, optimizer, mesh, rules_for(config.sharding.preset, config.sharding.rules), ema,
                              tuning.params_fn)
  make = functools.partial(create_state, model, optimizer, shardings=shardings, ema=ema, params_fn=tuning.params_fn)
  checkpointer = Checkpointer(workdir, config.train.checkpoint_every)
  try:
    return checkpointer.restore(abstract_like(jax.eval_shape(make, jax.random.key(0)), shardings), step)
  finally:
    checkpointer.close()


def make_train_step(model: MagnetConfig, optimizer: optax.GradientTransformation, config: ml_collections.ConfigDict,
                    mesh, rules, shardings, tuning: FineTune | None = None, base=None) -> Callable:
  """The jitted, sharded step: (state, batch, rng) -> (state, metrics). The state argument is donated.

  `tuning` and `base`: the trainable params are mapped to the model's by `tuning.full_params(params, base)` (LoRA
  adapters merged into the frozen `base`, which is an argument of the step, never donated). `train_step.lower(state,
  batch, rng)` lowers the same step for ShapeDtypeStructs (with shardings) without running it."""
  lm = MagnetLM(model)
  base_shardings = tuning.base_shardings(mesh, rules) if tuning else None
  ema_decay = float(config.optim.ema_decay)
  schedule_lr = learning_rate_schedule(config.optim, config.train.num_steps)

  def step_fn(state: TrainState, batch: dict, rng: jax.Array, base):
    step_rng = jax.random.fold_in(rng, state.step)

    def loss_fn(params):
      full = tuning.full_params(params, base, jax.random.fold_in(step_rng, 1)) if tuning else params
      level_logits = lambda codes, cond, cond_mask, level: lm.apply(
          {'params': full}, codes, cond, cond_mask, level, method=MagnetLM.level_logits)
      return masked_level_loss(level_logits, batch, step_rng, model, config.train.cfg_dropout)

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = update_ema(state.ema_params, params, ema_decay) if ema_decay else None
    metrics = dict(metrics, grad_norm=optax.tree.norm(grads), lr=schedule_lr(state.step))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema), metrics

  data = batch_sharding(mesh)
  jitted = jax.jit(step_fn, in_shardings=(shardings, data, replicated(mesh), base_shardings),
                   out_shardings=(shardings, replicated(mesh)), donate_argnums=0)

  def train_step(state, batch, rng):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted(state, batch, rng, base)

  def lower(state, batch, rng):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted.lower(state, batch, rng, base)
  train_step.lower = lower  # the step for (abstract) arguments, e.g. compiled ahead of time (training/aot.py)
  return train_step


def global_batch(local: dict, mesh) -> dict:
  """This process's examples -> global arrays split over `data` (the same call on 1 or many processes).

  Each process holds 1 / process_count of the global batch; the global shape is stated so that a mesh whose
  `data` axis does not split the batch between the processes fails instead of silently shrinking the batch.
  """
  sharding = batch_sharding(mesh)
  def one(x):
    x = np.asarray(x)
    return jax.make_array_from_process_local_data(sharding, x, (x.shape[0] * jax.process_count(), *x.shape[1:]))
  return {k: one(v) for k, v in local.items()}


class MetricsLog:
  """Collects per-step metrics without host syncs and summarises them at log points: checks they are finite
  (`loop.mean_metrics`), averages them over the window and, per level, averages the loss of the window's steps
  that trained it (`loss_level_K`, for the levels the window drew). Nothing carries over from one window to the
  next, so a resumed run logs the same rows as an uninterrupted one."""

  def __init__(self):
    self._pending: list[tuple[int, dict]] = []

  def add(self, step: int, metrics: dict) -> None:
    self._pending.append((step, metrics))

  def flush(self) -> dict | None:
    if not self._pending:
      return None
    steps, metrics = zip(*self._pending, strict=True)
    self._pending = []
    host = jax.device_get(list(metrics))
    summary = loop.mean_metrics(host, steps, finite=('loss', 'grad_norm'))
    del summary['level']
    levels: dict[int, list[float]] = {}
    for m in host:
      levels.setdefault(int(m['level']), []).append(float(m['loss']))
    summary.update({f'loss_level_{k}': float(np.mean(v)) for k, v in sorted(levels.items())})
    summary['step'] = steps[-1]
    return summary


def _check_mesh(config: ml_collections.ConfigDict, model: MagnetConfig, mesh) -> None:
  data, tensor = mesh.shape['data'], mesh.shape['model']
  if config.train.batch_size % data:
    raise ValueError(f'train.batch_size={config.train.batch_size} is not divisible by the mesh data axis ({data})')
  if data % jax.process_count():
    raise ValueError(f'the mesh data axis ({data}) is not a multiple of the {jax.process_count()} processes, each '
                     'of which feeds its own part of the batch')
  if config.sharding.preset == 'tensor_parallel':
    for name, size in (('num_heads', model.num_heads), ('mlp_dim', model.mlp_dim)):
      if size % tensor:
        raise ValueError(f'model {name}={size} is not divisible by the mesh model axis ({tensor})')


def weights_source(config: ml_collections.ConfigDict, workdir: str, resume: bool, step: int) -> str:
  """Where a run's starting weights come from, in words (logged when it starts)."""
  if resume:
    return f'resumed from {os.path.join(os.path.abspath(workdir), "checkpoints")} at step {step}'
  source = config.init.source
  if not source:
    return 'random initialisation (config.init.source is not set)'
  role = 'frozen base of the LoRA adapters' if config.lora.rank else 'params; step, optimizer and data start fresh'
  reinit = f', re-initialising {list(config.init.reinit)}' if config.init.reinit else ''
  return f'init.source {os.path.abspath(source)} ({role}{reinit})'


def finished(config: ml_collections.ConfigDict, workdir: str, step: int) -> str:
  """The last line of a run: what it wrote and the command that uses it."""
  workdir = os.path.abspath(workdir)
  if config.lora.rank:
    adapter = os.path.join(workdir, ADAPTER_FILE)
    base = os.path.abspath(config.init.source) if config.init.source else 'BASE'
    return (f'done at step {step}: LoRA adapter {adapter}; next: magnet-jax --checkpoint {base} --lora {adapter}:1.0 '
            f'--prompt "..." (or python -m magnet_jax.apps.merge_lora --checkpoint {base} --lora {adapter} --out DIR)')
  return (f'done at step {step}: checkpoint {os.path.join(workdir, "checkpoints")}; next: python train.py '
          f'--config=... --workdir={workdir} --resume to go on, or --config.init.source={workdir} to fine-tune from it')


def train(config: ml_collections.ConfigDict, workdir: str, resume: bool = False) -> dict:
  """Trains from `config` in `workdir` (checkpoints, metrics.jsonl); returns the last logged metrics.

  Args:
    config: a full config (see configs/base.py).
    workdir: output folder; must not hold checkpoints unless `resume`.
    resume: continue exactly from the latest checkpoint (params, optimizer, step, data position; the per-step
      randomness is derived from the seed and the step).
  """
  model = validate(config)
  tuning = FineTune(config, model)
  mesh = make_mesh(config.sharding.mesh)
  _check_mesh(config, model, mesh)
  rules = rules_for(config.sharding.preset, config.sharding.rules)
  lead = jax.process_index() == 0
  num_steps = int(config.train.num_steps)
  optimizer = tuning.optimizer(make_optimizer(config.optim, num_steps))
  ema = bool(config.optim.ema_decay)
  shardings = state_shardings(model, optimizer, mesh, rules, ema, tuning.params_fn)
  source = make_source(config, model, batch_part(mesh, config.train.batch_size), jax.process_count())
  checkpointer = loop.open_checkpointer(workdir, config.train, resume)
  loop.check_resume_config(workdir, config, resume, RESUME_MAY_CHANGE, write=lead)
  init_rng, step_rng = jax.random.split(jax.random.key(config.train.seed))
  make_state = functools.partial(create_state, model, optimizer, shardings=shardings, ema=ema,
                                 params_fn=tuning.params_fn)
  base = tuning.base(mesh, rules, jax.random.fold_in(init_rng, 1))  # LoRA's frozen model, else None
  if resume:
    abstract = abstract_like(jax.eval_shape(make_state, init_rng), shardings)
    state, data_state = checkpointer.restore(abstract)
    source.set_state(data_state)
  else:
    state = tuning.initial_state(make_state, init_rng, shardings)
  train_step = make_train_step(model, optimizer, config, mesh, rules, shardings, tuning, base)
  # --- fine-tuning hooks (training/finetune.py, validation.py, samples.py, metrics_writer.py) ---
  counts = tuning.counts(state, base)
  hooks = TrainingHooks(config, model, workdir, mesh, rules, tuning, base, shardings.params, enabled=lead)
  # ---
  first = int(jax.device_get(state.step))
  metrics_log = MetricsLog()
  tokens_per_step = config.train.batch_size * model.n_q * (config.data.length or model.sequence_length)
  if lead:
    logging.info('training %s on mesh %s (%s), steps %d -> %d; params: %d trainable, %d frozen; optimizer state: '
                 '%d', workdir, dict(mesh.shape), config.sharding.preset, first, num_steps, counts['params_trainable'],
                 counts['params_frozen'], counts['optimizer_state'])
    logging.info('weights: %s', weights_source(config, workdir, resume, first))
  progress = loop.Progress(workdir, first, num_steps, 'train', enabled=lead)
  summary: dict = {'step': first, **counts, **hooks.run(first, state, start=True)}  # the 'before' numbers
  progress.log(summary)
  hooks.write(first, summary)
  for step in range(first, num_steps):
    state, metrics = train_step(state, global_batch(next(source), mesh), step_rng)
    metrics_log.add(step + 1, metrics)
    done = step + 1
    evaluated = hooks.run(done, state) if hooks.due(done) else {}  # validation metrics; samples written
    if done % config.train.log_every == 0 or done % config.train.checkpoint_every == 0 or done == num_steps:
      summary = metrics_log.flush() or summary
      rate = progress.rate(done)
      summary.update(steps_per_s=rate, tokens_per_s=rate * tokens_per_step, **evaluated)
      progress.log(summary, loss=f'{summary["loss"]:.4f}', steps_s=f'{rate:.2f}',
                   tok_s=f'{rate * tokens_per_step:.0f}')
      if lead and done % config.train.log_every == 0:
        levels = ' '.join(f'L{k[-1]}={v:.3f}' for k, v in summary.items() if k.startswith('loss_level_'))
        logging.info('step %d/%d loss %.4f [%s] acc %.3f | %.2f steps/s %.0f tokens/s | ETA %.0fs', done, num_steps,
                     summary['loss'], levels, summary['accuracy'], rate, rate * tokens_per_step,
                     progress.eta(done, rate))
      hooks.write(done, summary)
      checkpointer.save(done, state, source.get_state(), force=done == num_steps)
    elif evaluated:
      progress.log({'step': done, **evaluated})
      hooks.write(done, evaluated)
    if evaluated:
      progress.exclude()
    progress.step()
  progress.close()
  checkpointer.wait()
  checkpointer.close()
  if lead and tuning.lora:  # fetching params is only needed (and only possible on one host) for an adapter file
    tuning.export(os.path.join(workdir, ADAPTER_FILE), jax.device_get(state.params))
  hooks.close()
  return summary
