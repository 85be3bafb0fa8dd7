"""The sharded training step (`trainer.make_train_step`) as a benchmark target: steps/s and model FLOPs utilisation.

MFU = analytic model FLOPs per step (`models.flops.mfu_flops_per_step`: forward + backward, one level head, restricted
attention counted as 11 keys) / median step time / the device's peak FLOP/s (`measure.peak_flops`: the vendor's
bf16 dense figure on known GPUs, else a matmul measured in the same worker right after the steps).
"""
import dataclasses

import jax
import numpy as np

from benchmarks.latency import spec
from benchmarks.latency.measure import Target, peak_flops
from magnet_jax.parallel.sharding import make_mesh, rules_for
from magnet_jax.training import trainer
from magnet_jax.training.optim import make_optimizer


def train_config(name: str, batch: int, length: int, gpu: bool):
  """The full (ml_collections) config of a benchmark training run: configs/base.py with MODELS[name], float32
  params, bfloat16 compute on GPU, on a data-parallel mesh over every device."""
  from magnet_jax.configs import base  # the repository's defaults (run from the repository root, like train.py)
  config = base.get_config()
  model = spec.model_config(name, gpu, segment_duration=length / 50, dtype='bfloat16' if gpu else 'float32')
  config.model.update(dataclasses.asdict(model))
  config.train.update(batch_size=batch, num_steps=1_000)
  config.data.length = length
  return config


class TrainStep(Target):
  """One optimizer step on a fixed random batch per call (the state is donated and replaced)."""

  def __init__(self, name: str, batch: int, length: int, gpu: bool):
    config = train_config(name, batch, length, gpu)
    self.gpu = gpu
    self.model = trainer.validate(config)
    mesh = make_mesh(config.sharding.mesh)
    rules = rules_for(config.sharding.preset, config.sharding.rules)
    optimizer = make_optimizer(config.optim, config.train.num_steps)
    shardings = trainer.state_shardings(self.model, optimizer, mesh, rules, ema=False)
    self.state = trainer.create_state(self.model, optimizer, jax.random.key(0), shardings, ema=False)
    self.step = trainer.make_train_step(self.model, optimizer, config, mesh, rules, shardings)
    rng = np.random.default_rng(0)
    self.batch = trainer.global_batch({
        'codes': rng.integers(0, self.model.card, (batch, self.model.n_q, length), dtype=np.int32),
        'cond': rng.normal(size=(batch, spec.TEXT_TOKENS, self.model.text_dim)).astype(np.float32),
        'cond_mask': np.ones((batch, spec.TEXT_TOKENS), bool)}, mesh)
    self.rng = jax.random.key(1)

  def __call__(self) -> float:
    self.state, metrics = self.step(self.state, self.batch, self.rng)
    return float(metrics['loss'])  # waits for the step

  def info(self) -> dict:
    """The device's peak FLOP/s for the MFU, measured now (right after the timed steps) where not nominal."""
    flops, source = peak_flops()
    return {'peak_flops': flops, 'peak_source': source}
