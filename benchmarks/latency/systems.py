"""The systems under test. Each is built inside its own worker process and called once per generate:
`system() -> tokens [B, K, T]` as a host numpy array (so device work is complete when it returns).

  audiocraft          MagnetLMModel.generate, eager PyTorch (float32 on CPU; float16 + autocast on GPU, as released;
                      `reference.audiocraft_generate`, the only torch code).
  audiocraft-compile  the same with the LM forward under torch.compile (one graph per level).
  audiocraft-fp32     audiocraft eager in float32 (on a GPU; the same as audiocraft on a CPU).
  magnet-jax          decoding.generate: all decoding steps in one XLA program (bfloat16 on a GPU).
  magnet-jax-fp32     the same in float32 (on a GPU; the same as magnet-jax on a CPU).
  magnet-jax-loop     the same decoder step jitted once and driven by a Python loop (host round trip per step).
  ar-jax              MusicGen-style autoregressive decoding (delay pattern, KV cache, top-k 250, CFG 3) of the same
                      LM, one frame per step: the baseline MAGNeT's non-autoregressive decoding is compared with.

Both frameworks get the same random weights: the reference model is built once (`export_weights`), its state dict
saved, loaded as is by the PyTorch systems and converted by `params_from_torch_state_dict` for the JAX ones.
"""
import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.latency import spec
from benchmarks.latency.measure import Target
from magnet_jax import decoding
from magnet_jax.decoding import DecodingConfig
from magnet_jax.decoding.hybrid import HybridConfig, autoregressive_prefix
from magnet_jax.io.audiocraft import params_from_torch_state_dict
from magnet_jax.models import MagnetLM
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.params import init_params


@dataclasses.dataclass(frozen=True)
class Weights:
  """Files shared by the workers of one model size."""
  state_dict: str | None  # .npz: the reference LM's state dict (float32); None when audiocraft is unavailable.
  states: str             # .npz: text-encoder states [S, Dt], one array per description ('example {i}').


def descriptions(batch: int) -> list[str]:
  return [f'example {i}' for i in range(batch)]


def export_weights(model: MagnetConfig, max_batch: int, folder: str, seed: int = 0) -> tuple[Weights, str | None]:
  """Random text states and, when audiocraft imports, a random reference LM's state dict, saved under `folder`.

  Returns:
    (weights, None) or (weights without a state dict, why audiocraft is unavailable). The JAX systems then use
    `init_params` weights and the PyTorch systems are skipped.
  """
  rng = np.random.default_rng(seed)
  states = {d: rng.normal(size=(spec.TEXT_TOKENS, model.text_dim)).astype(np.float32)
            for d in descriptions(max_batch)}
  states_path = os.path.join(folder, 'states.npz')
  np.savez(states_path, **states)
  try:
    from reference.audiocraft_generate import random_state_dict
  except ImportError as e:
    return Weights(None, states_path), f'audiocraft unavailable ({e})'
  state_dict_path = os.path.join(folder, 'state_dict.npz')
  np.savez(state_dict_path, **random_state_dict(model, states, seed))
  return Weights(state_dict_path, states_path), None


def _conditions(weights: Weights, batch: int) -> dict[str, np.ndarray]:
  with np.load(weights.states) as states:
    return {d: states[d] for d in descriptions(batch)}


class Audiocraft(Target):
  """audiocraft's MagnetLMModel.generate with MAGNeT's default decoding (CFG always on: audiocraft has no switch)."""

  def __init__(self, group: spec.Group, weights: Weights, compile_forward: bool, half: bool):
    from reference.audiocraft_generate import MagnetGenerator
    self.gpu = group.gpu
    decoding_config = DecodingConfig()
    with np.load(weights.state_dict) as state_dict:
      self.generator = MagnetGenerator(
          group.model, _conditions(weights, group.batch), {k: state_dict[k] for k in state_dict.files},
          gpu=group.gpu, half=half, compile_forward=compile_forward, max_gen_len=group.frames,
          use_sampling=decoding_config.use_sampling, temp=decoding_config.temp, top_k=decoding_config.top_k,
          top_p=decoding_config.top_p, max_cfg_coef=decoding_config.max_cfg_coef,
          min_cfg_coef=decoding_config.min_cfg_coef, decoding_steps=list(decoding_config.decoding_steps),
          span_scoring=decoding_config.span_scoring, span_arrangement=decoding_config.span_arrangement)

  def __call__(self) -> np.ndarray:
    return self.generator()

  def reset_peak(self) -> None:
    super().reset_peak()
    self.generator.reset_peak()

  def device_peak_bytes(self) -> int | None:
    return self.generator.peak_bytes()


class Jax(Target):
  """The JAX systems: weights converted from the reference (or `init_params`), cast to the group's dtype."""

  def __init__(self, name: str, group: spec.Group, weights: Weights):
    self.gpu = group.gpu
    config = spec.system_model(group, name)
    if weights.state_dict is None:
      params = init_params(config, jax.random.key(0))
    else:
      with np.load(weights.state_dict) as state_dict:
        params = params_from_torch_state_dict({k: state_dict[k] for k in state_dict.files}, config)
    params = jax.tree.map(lambda x: jnp.asarray(x, config.params_dtype), params)
    states = _conditions(weights, group.batch)
    cond = jnp.asarray(np.stack([states[d] for d in descriptions(group.batch)]))
    cond_mask = jnp.ones(cond.shape[:2], bool)
    program = _program(name, group, config)
    self._call = lambda: program(params, cond, cond_mask, jax.random.key(0))

  def __call__(self) -> np.ndarray:
    return np.asarray(self._call())

  def profile(self, folder: str) -> None:
    """One call under the JAX profiler: a trace (TensorBoard / Perfetto) under `folder`."""
    with jax.profiler.trace(folder):
      self()


def _program(name: str, group: spec.Group, config: MagnetConfig):
  """(params, cond, cond_mask, rng) -> codes [B, K, T]: one jitted program, or the Python-loop driver (its decode
  state donated to each step)."""
  config_decoding = DecodingConfig()
  if name == 'ar-jax':
    # Every sequence step autoregressive: level q's T frames end at step T + q, the last at T + K - 1.
    ar = HybridConfig(prefix_length=group.frames + config.n_q - 1, top_k=min(spec.AR_TOP_K, config.card),
                      cfg_coef=spec.AR_CFG_COEF)
    return jax.jit(lambda p, c, m, rng: autoregressive_prefix(p, config, c, m, rng, hybrid=ar, length=group.frames))
  if name in ('magnet-jax', 'magnet-jax-fp32') and group.cfg:
    return functools.partial(decoding.generate, lm_config=config, decoding=config_decoding, length=group.frames)
  length = group.output_frames(name)
  decoder = decoding.MaskedDecoder(config_decoding, config.mask_id, config.span_len, length)
  logits_fn = decoding.magnet_logits_fn if group.cfg else _unguided_logits_fn
  init = lambda p, c, m, rng: decoder.init(*decoding.initial_context(c.shape[0], config, length), rng)
  if name != 'magnet-jax-loop':
    return jax.jit(lambda p, c, m, rng: decoder.run(init(p, c, m, rng), logits_fn(p, config, c, m)).codes)
  init = jax.jit(init)
  step = jax.jit(lambda p, c, m, i, state: decoder.step(i, state, logits_fn(p, config, c, m)), donate_argnums=4)

  def python_loop(params, cond, cond_mask, rng):
    state = init(params, cond, cond_mask, rng)
    for i in range(config_decoding.num_steps):
      state = step(params, cond, cond_mask, i, state)
    return state.codes

  return python_loop


def _unguided_logits_fn(params, config: MagnetConfig, cond: jax.Array, cond_mask: jax.Array) -> decoding.LogitsFn:
  """A `decoding.LogitsFn` without classifier-free guidance: one forward of the B conditioned rows, returned twice
  because the decoder guides [cond; null] halves and guiding two equal halves is the identity."""
  lm = MagnetLM(config)

  def logits_fn(codes: jax.Array, level: jax.Array) -> jax.Array:
    logits = lm.apply({'params': params}, codes, cond, cond_mask, level, method=MagnetLM.level_logits)
    return jnp.concatenate([logits, logits])

  return logits_fn


def unsupported(group: spec.Group, name: str) -> str | None:
  """Why `name` cannot run `group` at all (before estimating its cost), or None."""
  if not group.cfg and name.startswith('audiocraft'):
    return "audiocraft's MAGNeT always guides when conditioned (and crashes unconditioned, lm_magnet.py)"
  if not group.cfg and name == 'ar-jax':
    return 'the autoregressive baseline always guides (MusicGen, CFG 3)'
  return None


def build(name: str, group: spec.Group, weights: Weights):
  """The callable system `name` for `group` (in the calling process)."""
  if name in spec.JAX_SYSTEMS:
    return Jax(name, group, weights)
  return Audiocraft(group, weights, compile_forward=name == 'audiocraft-compile', half=name != 'audiocraft-fp32')
