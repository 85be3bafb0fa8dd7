"""audiocraft's MAGNeT generation as the benchmark (`benchmarks.latency`) runs it: given weights, eager or with
the LM forward under torch.compile, on CPU (float32) or on GPU as released (float16 weights under float16 autocast,
audiocraft's loaders.py and genmodel.py) or in float32."""
from collections.abc import Mapping

import numpy as np

from magnet_jax.models.config import MagnetConfig
from reference.audiocraft_lm import build_magnet_lm, conditioners, torch


def random_state_dict(config: MagnetConfig, states: Mapping[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
  """The state dict (float32 numpy) of a random reference LM (`build_magnet_lm`): the weights both sides load."""
  return {k: v.detach().numpy() for k, v in build_magnet_lm(config, states, seed=seed).state_dict().items()}


class MagnetGenerator:
  """`generator() -> codes [B, K, T]` (numpy): one `MagnetLMModel.generate` call for fixed descriptions.

  Args:
    config: the LM sizes (its dtype is ignored: float32 on CPU, float16 on GPU unless not `half`).
    states: description -> text-encoder states [S, Dt]; one example per description, in order.
    state_dict: the reference LM's weights (`build_magnet_lm`'s keys), float32 arrays.
    gpu: run on CUDA.
    half: on CUDA, float16 weights under float16 autocast as released (else float32).
    compile_forward: put `MagnetLMModel.forward` under torch.compile (one graph per level).
    max_gen_len: frames requested.
    **generation: `MagnetLMModel.generate` keyword arguments (temp, top_p, decoding_steps, ...).
  """

  def __init__(self, config: MagnetConfig, states: Mapping[str, np.ndarray], state_dict: Mapping[str, np.ndarray],
               *, gpu: bool, compile_forward: bool, max_gen_len: int, half: bool = True, **generation):
    model = build_magnet_lm(config, states)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()})
    self.device = 'cuda' if gpu else 'cpu'
    self.half = gpu and half
    if gpu:  # the per-level masks are a plain list, not buffers: move them too
      dtype = torch.float16 if half else torch.float32
      model = model.to('cuda', dtype)
      model.attn_mask_per_stage = [m if m is None else m.to('cuda', dtype) for m in model.attn_mask_per_stage]
    if compile_forward:
      model.forward = torch.compile(model.forward, dynamic=False)
    self.model = model
    self.conditions = [conditioners.ConditioningAttributes(text={'description': d}) for d in states]
    self.generation = dict(generation, max_gen_len=max_gen_len)

  def __call__(self) -> np.ndarray:
    with torch.no_grad(), torch.autocast(self.device, dtype=torch.float16, enabled=self.half):
      codes = self.model.generate(conditions=self.conditions, **self.generation)
    return codes.cpu().numpy()

  def reset_peak(self) -> None:
    """Starts a new window for `peak_bytes` (GPU)."""
    if self.device == 'cuda':
      torch.cuda.reset_peak_memory_stats()

  def peak_bytes(self) -> int | None:
    """Peak bytes held by torch's CUDA allocator since `reset_peak`; None on CPU."""
    return int(torch.cuda.max_memory_allocated()) if self.device == 'cuda' else None
