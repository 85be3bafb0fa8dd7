"""One batch of outputs -> one call of the compiled pipeline program, on every local device.

Batch independence: an output's tokens depend only on its own prompt, seed and inputs, not on its batch mates.
The random draws are per example (`MagnetPipeline`); the text conditioning would not be, since cross-attention
attends to the batch's longest prompt length (`models.attention.cross_attention_mask`, audiocraft's semantics). So
outputs batch only with outputs whose prompt has the same token count (`Work.key`), and text is padded to one fixed
length (`text_pad_to` = the server's prompt token limit), which changes no value (padded positions past the
longest prompt are masked out) and gives every batch the same text shape. Audio is decoded one output at a time,
as a single-prompt call decodes it, so each file is bit for bit what `MagnetPipeline` (and the command line) gives
for that prompt and seed alone.

Devices: the batch is split over the `data` axis of a mesh of all local devices and the parameters laid out by a
`parallel.sharding` preset (data_parallel replicates them; tensor_parallel splits heads / MLP / vocab over
`model`), with the logical-axis rules the trainer uses. Batches are padded with empty prompts to a multiple of the
`data` axis.

Shapes: B batch, K levels, T frames, C channels, N samples.
"""
import contextlib
import dataclasses
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import numpy as np

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation.pipeline import MagnetPipeline
from magnet_jax.models.params import logical_axes
from magnet_jax.parallel import sharding

MODES = ('text', 'continuation', 'infill', 'outpaint', 'loop')


@dataclasses.dataclass(frozen=True, eq=False)
class Work:
  """One output: a prompt, its seed and its inputs.

  Attributes:
    text: the prompt ('' : unconditional).
    seed: its seed.
    mode: one of MODES; continuation / outpaint / infill need `audio`, loop may take it.
    decoding: the checked decoding config.
    frames: T, the output's frames (continuation, outpaint, generated loops) or the audio's (infill, given loops).
    text_tokens: the prompt's token count (outputs batch only with equal counts; see the module docstring).
    audio: [C, N] float32 at the codec's rate and channels, or None.
    infill: seconds [start, end) to regenerate (infill).
  """
  text: str
  seed: int
  mode: str
  decoding: DecodingConfig
  frames: int
  text_tokens: int
  audio: np.ndarray | None = None
  infill: tuple[float, float] | None = None

  @property
  def key(self) -> tuple:
    """Outputs with equal keys run in one call of one compiled program."""
    audio = None if self.audio is None else self.audio.shape[-1]
    return self.mode, self.decoding, self.frames, self.text_tokens, audio, self.infill


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


def _padded(values: list, size: int, fill) -> list:
  return values + [fill] * (size - len(values))


def generate(pipeline: MagnetPipeline, works: Sequence[Work], devices: Devices | None = None,
             on_tokens: Callable[[], None] | None = None, stop: Callable[[], bool] | None = None) -> list[np.ndarray]:
  """Runs outputs of one key together: audio [C, N] for each, in order.

  Args:
    pipeline: the pipeline (its `text_pad_to` fixed by the caller; see the module docstring).
    works: outputs with equal `key`.
    devices: where to run (None: JAX's default device).
    on_tokens: told when the batch's tokens are done (before the per-output decoding).
    stop: asked after every decoding step (the pipeline's progress variant of the program); True stops the
      batch there and raises `Cancelled`. None: the program without host callbacks.
  """
  if len({w.key for w in works}) != 1:
    raise ValueError('a batch needs outputs of one key (mode, decoding, frames, prompt tokens, audio, infill span)')
  first, count = works[0], len(works)
  data = 1 if devices is None else devices.data
  size = -(-count // data) * data
  texts = _padded([w.text for w in works], size, None)
  seeds = _padded([w.seed for w in works], size, 0)
  with devices.context() if devices is not None else contextlib.nullcontext():
    on_step = None if stop is None else lambda done, total: stop()
    codes = _tokens(pipeline, first, texts, seeds, [w.audio for w in works], on_step)
    if on_tokens is not None:
      on_tokens()
    decode = pipeline.decode_loop if first.mode == 'loop' else pipeline.decode
    audio = [decode(codes[b:b + 1])[0] for b in range(count)]
  if first.mode == 'infill':
    audio = [a[..., :first.audio.shape[-1]] for a in audio]
  return audio


def _tokens(pipeline: MagnetPipeline, first: Work, texts: list, seeds: list, audios: list, on_step) -> np.ndarray:
  """codes [B', K, T] for the padded batch (the pipeline's own method for the mode)."""
  decoding, seconds = first.decoding, first.frames / pipeline.frame_rate
  given = None
  if first.audio is not None:  # encoded one at a time, as a single-prompt call encodes its audio
    given = np.concatenate([pipeline.encode(a[None]) for a in audios])
    given = np.concatenate([given, np.repeat(given[:1], len(texts) - len(audios), axis=0)])
  if first.mode == 'text' or (first.mode == 'loop' and given is None):
    codes = pipeline.generate_tokens(texts, seconds, seeds, on_step=on_step, decoding=decoding)
  elif first.mode == 'continuation':
    codes = pipeline.generate_tokens(texts, seconds, seeds, given, on_step=on_step, decoding=decoding)
  elif first.mode == 'infill':
    start, end = first.infill
    known = np.ones(given.shape[-1], bool)
    known[int(start * pipeline.frame_rate):int(np.ceil(end * pipeline.frame_rate))] = False
    codes = pipeline.fill_tokens(texts, given, known, seeds, on_step=on_step, decoding=decoding)
  elif first.mode == 'outpaint':
    codes = np.zeros(given.shape[:2] + (first.frames,), np.int32)
    codes[..., -given.shape[-1]:] = given
    known = np.zeros(first.frames, bool)
    known[-given.shape[-1]:] = True
    codes = pipeline.fill_tokens(texts, codes, known, seeds, reverse=True, on_step=on_step, decoding=decoding)
  else:
    codes = given
  if first.mode == 'loop':
    codes = pipeline.loop_tokens(texts, codes, seeds, on_step=on_step, decoding=decoding)
  return codes
