"""What the training loop does besides stepping: validation every `eval.every` steps (and before the first),
samples every `samples.every` steps, TensorBoard scalars. One object, so the loop's hooks stay a few lines."""
import jax
import ml_collections

from magnet_jax.models.config import MagnetConfig
from magnet_jax.training.finetune import FineTune
from magnet_jax.training.metrics_writer import MetricsWriter
from magnet_jax.training.optim import TrainState
from magnet_jax.training.samples import SampleWriter
from magnet_jax.training.validation import Validator


class TrainingHooks:
  """Validation, samples and the TensorBoard writer of a run (validation runs on every process; the writing
  only where `enabled`)."""

  def __init__(self, config: ml_collections.ConfigDict, model: MagnetConfig, workdir: str, mesh, rules,
               tuning: FineTune, base, param_shardings, enabled: bool = True):
    self.eval_every, self.samples_every = int(config.eval.every), int(config.samples.every)
    model_shardings = tuning.base_shardings(mesh, rules) or param_shardings
    self.validator = Validator(config, model, mesh, rules, model_shardings) if self.eval_every else None
    self.writer = MetricsWriter(workdir, enabled)
    self.samples = None
    if self.samples_every:
      self.samples = SampleWriter(config, model, workdir, write=enabled, listen=self.writer.audio)
    # the model's params from the state: EMA ones when kept, LoRA adapters merged into the base
    self._model_params = jax.jit(tuning.full_params, out_shardings=model_shardings)
    self._base, self._mesh = base, mesh

  def due(self, step: int) -> bool:
    return bool((self.eval_every and step % self.eval_every == 0)
                or (self.samples_every and step % self.samples_every == 0))

  def run(self, step: int, state: TrainState, start: bool = False) -> dict:
    """Validation metrics at `step` (and samples written when due); `start`: the run's first step (both run)."""
    if not (start or self.due(step)) or not (self.validator or self.samples):
      return {}
    with jax.set_mesh(self._mesh):
      params = self._model_params(state.ema_params if state.ema_params is not None else state.params, self._base)
    metrics = {}
    if self.validator and (start or step % self.eval_every == 0):
      metrics = self.validator(params)
    if self.samples and (start or step % self.samples_every == 0):
      self.samples(step, params)
    return metrics

  def write(self, step: int, scalars: dict) -> None:
    self.writer.write(step, scalars)

  def close(self) -> None:
    self.writer.close()
