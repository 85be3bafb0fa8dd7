"""One batch of outputs -> one call of the generation library (`generation.request`), on every local device.

The server builds the same `generation.request.Request` per output as the command line and runs it through the
same `request.generate` (or `best_of.generate`), so an output is the command line's for the same prompt, seed and
inputs, sample for sample, whatever its duration: the pipeline's own continuation, infill, outpaint and loop.

Batch independence: an output's audio depends only on its own prompt, seed and inputs, not on its batch mates.
The random draws are per example and the pipeline decodes each example's audio on its own (`MagnetPipeline`); the
text conditioning would not be, since cross-attention attends to the batch's longest prompt length
(`models.attention.cross_attention_mask`, audiocraft's semantics). So outputs batch only with outputs whose prompt
has the same token count (`Work.key`), and text is padded to one fixed length (`text_pad_to` = the server's prompt
token limit), which changes no value (padded positions past the longest prompt are masked out) and gives every
batch the same text shape.

Devices: the batch is split over the `data` axis of a mesh of all local devices and the parameters laid out by a
`parallel.sharding` preset (data_parallel replicates them; tensor_parallel splits heads / MLP / vocab over
`model`), with the logical-axis rules the trainer uses. Batches are padded with copies of their first output to a
multiple of the `data` axis.

Shapes: B batch, K levels, T frames, C channels, N samples.
"""
import contextlib
import dataclasses
from collections.abc import Callable, Hashable, Sequence

import flax.linen as nn
import jax
import numpy as np

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import best_of
from magnet_jax.generation import request as request_lib
from magnet_jax.generation.pipeline import MagnetPipeline
from magnet_jax.generation.request import Request
from magnet_jax.models.params import logical_axes
from magnet_jax.parallel import sharding


@dataclasses.dataclass(frozen=True, eq=False)
class Work:
  """One output: its generation request, checked (`request.check`), with what batching needs.

  Attributes:
    request: the output's `generation.request.Request`.
    decoding: the checked decoding config.
    text_tokens: the prompt's token counts (outputs batch only with equal counts; see the module docstring): any
      hashable value, the server's is each schedule entry's (seconds, tokens) and the negative prompt's tokens.
    best_of: candidates generated for it; the scorer's best is kept (`generation.best_of`).
    scorer: the best-of scorer's name.
  """
  request: Request
  decoding: DecodingConfig
  text_tokens: Hashable
  best_of: int = 1
  scorer: str = 'stats'

  @property
  def key(self) -> tuple:
    """Outputs with equal keys run in one call of the library."""
    return self.request.key, self.decoding, self.text_tokens, self.best_of, self.scorer


@dataclasses.dataclass
class Devices:
  """A mesh over the local devices and the logical-axis rules the pipeline runs under."""
  mesh: jax.sharding.Mesh
  rules: tuple

  @property
  def data(self) -> int:
    return self.mesh.shape['data']

  def context(self):
    """Where every pipeline call runs (the trainer's `train_step` uses the same pair)."""
    stack = contextlib.ExitStack()
    stack.enter_context(jax.set_mesh(self.mesh))
    stack.enter_context(nn.logical_axis_rules(self.rules))
    return stack


def place(pipeline: MagnetPipeline, preset: str = 'data_parallel', model: int = 1) -> Devices:
  """Lays the pipeline's LM parameters out over all local devices (`model` ways tensor parallel, the rest data
  parallel) under the `parallel.sharding` preset; the codec and the text encoder stay replicated.

  Raises:
    ValueError: an unknown preset or a `model` size that does not divide the local devices.
  """
  mesh = sharding.make_mesh({'data': -1, 'model': model}, jax.local_devices())
  rules = sharding.rules_for(preset)
  specs = logical_axes(pipeline.lm_config)
  pipeline.lm_params = jax.device_put(pipeline.lm_params,
                                      sharding.param_shardings(specs, pipeline.lm_params, mesh, rules))
  pipeline.codec_params = jax.device_put(pipeline.codec_params, sharding.replicated(mesh))
  if pipeline.rescorer_params is not None:
    pipeline.rescorer_params = jax.device_put(pipeline.rescorer_params, sharding.replicated(mesh))
  return Devices(mesh, rules)


class StepCount:
  """A batch's decoding steps over all of its passes, which `on_step` counts each from 1 (`request.passes` per
  library call, one call per best-of chunk): (steps done, steps in all), the passes still to come estimated as long
  as the current one."""

  def __init__(self, passes: int):
    self.passes, self.base, self.last = passes, 0, (0, 0)

  def __call__(self, done: int, total: int) -> tuple[int, int]:
    if done <= self.last[0]:  # the next pass began
      self.base, self.passes = self.base + self.last[1], self.passes - 1
    self.last = (done, total)
    return self.base + done, self.base + total * max(self.passes, 1)


def generate(pipeline: MagnetPipeline, works: Sequence[Work], devices: Devices | None = None,
             on_progress: Callable[[int, int], None] | None = None, chunk: int = 8,
             stop: Callable[[], bool] | None = None) -> list[tuple[np.ndarray, dict]]:
  """Runs outputs of one key together: (audio [C, N], its seed record: {'seed'} or best-of's) for each, in order.

  Args:
    pipeline: the pipeline (its `text_pad_to` fixed by the caller; see the module docstring).
    works: outputs with equal `key`.
    devices: where to run (None: JAX's default device).
    on_progress: told (decoding steps done, steps in all) after every decoding step of the batch: every window,
      pass and best-of chunk (`StepCount`).
    chunk: best-of candidates generated together at most.
    stop: asked after every decoding step; True stops the batch there and raises `Cancelled`.
    With neither on_progress nor stop, the program without host callbacks runs.
  """
  if len({w.key for w in works}) != 1:
    raise ValueError('a batch needs outputs of one key (request, decoding, prompt tokens, best-of)')
  first, count = works[0], len(works)
  data = 1 if devices is None else devices.data
  requests = [w.request for w in works] + [first.request] * (-count % data)
  chunk = -(-chunk // data) * data
  calls = -(-len(requests) * first.best_of // chunk) if first.best_of > 1 else 1
  steps = StepCount(request_lib.passes(first.request) * calls)

  def on_step(done: int, total: int) -> bool:
    if on_progress is not None:
      on_progress(*steps(done, total))
    return stop is not None and stop()
  with devices.context() if devices is not None else contextlib.nullcontext():
    listen = None if on_progress is None and stop is None else on_step
    if first.best_of > 1:
      audio, chosen = best_of.generate(pipeline, requests, first.best_of, first.scorer, chunk, first.decoding,
                                       on_step=listen)
    else:
      audio = np.concatenate(list(request_lib.generate(pipeline, requests, first.decoding, on_step=listen)), axis=-1)
      chosen = [{'seed': r.seed} for r in requests]
  return list(zip(audio[:count], chosen[:count], strict=True))
