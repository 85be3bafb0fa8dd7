"""What a fine-tuning run changes in the trainer: where the params start (`init`), which ones train
(`train.trainable`) and LoRA adapters on a frozen base (`lora`). `FineTune` hands the trainer its optimizer, the
trainable params' initialiser, the frozen base and the function from (trainable, base) to the model's params.

Without any of these options it is the identity: random params, all trainable, no base.
"""
import dataclasses
import functools
import os
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from magnet_jax.generation.lora import merge, save_adapter
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.params import init_params, logical_axes
from magnet_jax.parallel.sharding import param_shardings
from magnet_jax.training import freezing, lora
from magnet_jax.training.init import load_init_params
from magnet_jax.training.optim import TrainState

ADAPTER_FILE = 'lora.safetensors'  # written to the workdir at the end of a LoRA run


def check_config(config: ml_collections.ConfigDict) -> None:
  """Range checks of the init / lora / eval / samples sections (the rest is checked by `FineTune`)."""
  ev, samples = config.eval, config.samples
  for name, value in (('eval.every', ev.every), ('samples.every', samples.every)):
    if int(value) < 0:
      raise ValueError(f'{name} must be >= 0 (0 = off), got {value}')
  if int(ev.every):
    if int(ev.num_examples) < 1 or int(ev.batch_size) < 1:
      raise ValueError(f'eval.num_examples and eval.batch_size must be >= 1, got {ev.num_examples}, {ev.batch_size}')
    if not ev.mask_rates or not all(0.0 < float(r) <= 1.0 for r in ev.mask_rates):
      raise ValueError(f'eval.mask_rates must be rates in (0, 1], got {tuple(ev.mask_rates)}')
  if int(samples.every) and not samples.prompts:
    raise ValueError('samples.every is set but samples.prompts is empty')


class FineTune:
  """A run's fine-tuning options, checked once (one ValueError each, naming the config field)."""

  def __init__(self, config: ml_collections.ConfigDict, model: MagnetConfig):
    self.model = model
    self.init = config.init
    self.trainable = tuple(config.train.trainable)
    self.lora = lora.config_from(config.lora) if int(config.lora.rank) else None
    shapes = jax.eval_shape(functools.partial(init_params, model), jax.random.key(0))
    if self.lora:
      for field, value in (('train.trainable', self.trainable), ('init.reinit', tuple(self.init.reinit))):
        if value:
          raise ValueError(f'{field}={value} cannot be combined with LoRA (lora.rank={self.lora.rank}): the base '
                           'model is frozen and only the adapters train; set lora.rank=0 to fine-tune parameters')
      lora.target_paths(shapes, self.lora.targets)
    if self.trainable:
      freezing.select(shapes, self.trainable, 'train.trainable')
    if self.init.reinit and not self.init.source:
      raise ValueError('init.reinit re-initialises parts of init.source, which is not set')
    if self.init.source and not os.path.exists(self.init.source):
      raise FileNotFoundError(f'init.source not found: {os.path.abspath(self.init.source)}')
    self._shapes = shapes

  def optimizer(self, optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    return freezing.freeze(optimizer, self.trainable) if self.trainable else optimizer

  @property
  def params_fn(self) -> Callable | None:
    """(rng, boxed) -> the trainable params for `trainer.init_state`: LoRA adapters, or None (the model's)."""
    if not self.lora:
      return None
    axes = lora.adapter_axes(logical_axes(self.model), self._shapes, lora.init_adapters(self._shapes, self.lora,
                                                                                         jax.random.key(0)))
    def init(rng, boxed):
      adapters = lora.init_adapters(self._shapes, self.lora, rng)
      if not boxed:
        return adapters
      return jax.tree.map(lambda x, spec: nn.Partitioned(x, names=tuple(spec)), adapters, axes,
                          is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
    return init

  def base_shardings(self, mesh, rules):
    """NamedShardings of the frozen base (LoRA), else None."""
    if not self.lora:
      return None
    return param_shardings(logical_axes(self.model), self._shapes, mesh, rules)

  def base(self, mesh, rules, rng: jax.Array):
    """The frozen base params on devices (init.source's, else random from `rng`) for LoRA, else None."""
    shardings = self.base_shardings(mesh, rules)
    if shardings is None:
      return None
    fresh = jax.jit(functools.partial(init_params, self.model), out_shardings=shardings)(rng)
    return load_init_params(self.init, self.model, fresh, shardings) if self.init.source else fresh

  def initial_state(self, make_state: Callable, rng: jax.Array, shardings) -> TrainState:
    """Step 0's state: `make_state(rng)` (random), with init.source's params when set (full fine-tuning)."""
    state = make_state(rng)
    if self.lora or not self.init.source:
      return state
    params = load_init_params(self.init, self.model, state.params, shardings.params)
    ema = None if state.ema_params is None else jax.tree.map(jnp.copy, params)
    return state.replace(params=params, ema_params=ema)

  def full_params(self, trainable, base, rng: jax.Array | None = None):
    """The model's params from the trainable ones (jittable; `rng` drives LoRA dropout, None = none)."""
    if not self.lora:
      return trainable
    return merge(base, trainable, self.lora.scale, self.lora.dropout if rng is not None else 0.0, rng)

  def counts(self, state: TrainState, base) -> dict[str, int]:
    """Parameter and optimizer-state element counts (what the optimizer holds, what stays frozen)."""
    size = lambda tree: int(sum(x.size for x in jax.tree.leaves(tree)))
    trainable = size(state.params)
    if self.trainable:
      chosen = freezing.select(state.params, self.trainable, 'train.trainable')
      trainable = int(sum(x.size for p, x in jax.tree_util.tree_leaves_with_path(state.params)
                          if freezing.path_of(p) in chosen))
    return {'params_trainable': trainable, 'params_frozen': size(state.params) - trainable + size(base),
            'optimizer_state': size(state.opt_state)}

  def export(self, path: str, trainable) -> None:
    """Writes the adapter file of a LoRA run (nothing otherwise)."""
    if self.lora:
      save_adapter(path, trainable, self.lora, dataclasses.asdict(self.model))
