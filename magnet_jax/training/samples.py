"""Samples during training: a few configured prompts generated with the current (EMA when kept) params and
written to `<workdir>/samples/step_N/` (`<i>.wav` decoded with `samples.codec`, or `<i>.npy` codes without one,
and `<i>.json` sidecars with the prompt, seed and step), so a person can listen to a run's progress.
"""
import json
import os
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from magnet_jax import codec
from magnet_jax.audio.files import AtomicAudioFile
from magnet_jax.data.loader import text_encoder_spec
from magnet_jax.decoding import DecodingConfig
from magnet_jax.decoding.generate import generate
from magnet_jax.generation import records
from magnet_jax.io.files import atomic_write
from magnet_jax.models.config import MagnetConfig
from magnet_jax.text import TextEncoder


class SampleWriter:
  """Generates `config.samples.prompts` (one example each, seeds samples.seed + i) at a step; every process
  generates (the params may be sharded over all of them), only where `write` are files written."""

  def __init__(self, config: ml_collections.ConfigDict, model: MagnetConfig, workdir: str, write: bool = True,
               listen: Callable[[int, str, np.ndarray, int], None] | None = None):
    """`listen(step, tag, audio [C, N], sample_rate)` is told each decoded sample (TensorBoard's audio)."""
    self.listen = listen
    samples = config.samples
    self.prompts = [str(p) for p in samples.prompts]
    if not self.prompts:
      raise ValueError('samples.every is set but samples.prompts is empty')
    self.model, self.seed, self.folder = model, int(samples.seed), os.path.join(workdir, 'samples')
    self.write = write
    spec = samples.text_encoder or (text_encoder_spec(config) if config.data.source == 'tfds' else '')
    if not spec:
      raise ValueError('samples need a text encoder: set samples.text_encoder (minilm | t5:FOLDER | bert:FOLDER)')
    self.text = TextEncoder.from_spec(spec)
    if self.text.dim != model.text_dim:
      raise ValueError(f'samples.text_encoder {spec!r} gives {self.text.dim}-d states, model.text_dim is '
                       f'{model.text_dim}')
    self.codec = codec.load_codec(samples.codec) if samples.codec else None
    self.decoding = DecodingConfig(decoding_steps=tuple(int(s) for s in samples.decoding_steps))
    self.length = int(round(float(samples.duration or model.segment_duration) * model.frame_rate))

  def __call__(self, step: int, params) -> str:
    """Writes the samples of `step`; returns their folder."""
    cond, cond_mask = self.text.encode(self.prompts)
    keys = jax.vmap(jax.random.key)(jnp.arange(len(self.prompts)) + self.seed)
    codes = np.asarray(generate(params, cond, cond_mask, keys, lm_config=self.model, decoding=self.decoding,
                                length=self.length))
    folder = os.path.join(self.folder, f'step_{step}')
    audio = None
    if self.codec is not None:
      audio = np.asarray(codec.decode(self.codec[1], jnp.asarray(codes), self.codec[0]))
    if not self.write:
      return folder
    os.makedirs(folder, exist_ok=True)
    for i, prompt in enumerate(self.prompts):
      sidecar = {'description': prompt, 'seed': self.seed + i, 'step': step, 'frames': int(codes.shape[-1])}
      if audio is not None:  # the audio and its sidecar, published as one unit as the command line writes them
        out = AtomicAudioFile(os.path.join(folder, f'{i}.wav'), self.codec[0].sample_rate, audio.shape[1])
        out.write(audio[i])
        records.finish(out, 'wav', False, {**sidecar, 'sample_rate': self.codec[0].sample_rate}, {})
        if self.listen is not None:
          self.listen(step, f'samples/{i}: {prompt}', audio[i], self.codec[0].sample_rate)
        continue
      atomic_write(os.path.join(folder, f'{i}.npy'), lambda tmp, c=codes[i]: np.save(open(tmp, 'wb'), c))
      text = json.dumps(sidecar, indent=2) + '\n'
      atomic_write(os.path.join(folder, f'{i}.json'), lambda tmp, t=text: pathlib.Path(tmp).write_text(t))
    return folder
