"""The benchmark grid: model sizes, cases, analytic FLOPs, and the cost estimates that decide what to skip.

A case is one system generating `batch` examples of `duration_s` seconds with one model size; the systems of a
case run interleaved in one group (`Group`) so that load from other processes hits all of them alike.
"""
import dataclasses
import itertools

from magnet_jax.decoding import DecodingConfig, output_length
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.flops import decode_flops, forward_flops, params_millions

# The model sizes. On a CPU the released ones (RELEASED) keep their widths with REDUCED_LAYERS layers ('small-24l'
# runs magnet-small whole anywhere).
MODELS: dict[str, dict] = {
    'tiny': dict(dim=64, num_heads=4, num_layers=2, card=32, text_dim=768),        # issue 8's 0.2M model.
    'compute': dict(dim=256, num_heads=4, num_layers=4, card=2048, text_dim=768),  # 8.6M, compute-bound.
    'small': dict(dim=1024, num_heads=16, num_layers=24, card=2048, text_dim=768),  # magnet-small (420M).
    'medium': dict(dim=1536, num_heads=24, num_layers=48, card=2048, text_dim=768),  # magnet-medium (1.8B).
}
# magnet-small at its real size on a CPU too (all 24 layers; slow: the real-size rows of issue 23).
MODELS['small-24l'] = MODELS['small']
RELEASED = ('small', 'medium')
REDUCED_LAYERS = 4

# 'magnet-jax-loop' (the decoder's step jitted once, driven by a Python loop) and the '-fp32' variants (float32 on a
# GPU, where the others run bfloat16 / float16; the same as the plain ones on a CPU) are opt-in.
SYSTEMS = ('audiocraft', 'audiocraft-compile', 'magnet-jax', 'ar-jax', 'magnet-jax-loop', 'magnet-jax-fp32',
           'audiocraft-fp32')
DEFAULT_SYSTEMS = SYSTEMS[:4]
JAX_SYSTEMS = ('magnet-jax', 'ar-jax', 'magnet-jax-loop', 'magnet-jax-fp32')

# `--gpu`: magnet-small's rows in priority order, (duration_s, batch, systems): a case that no longer fits the time
# budget is skipped, so the targets' rows (10 s batch 1; samples/s at batch 64) come first.
GPU_PLAN = (
    (10, 1, ('magnet-jax', 'audiocraft', 'ar-jax', 'magnet-jax-fp32', 'audiocraft-fp32')),
    (10, 64, ('magnet-jax', 'audiocraft', 'ar-jax')),
    (30, 1, ('magnet-jax', 'audiocraft', 'ar-jax')),
    (10, 1, ('audiocraft-compile',)),
    (10, 16, ('magnet-jax', 'audiocraft', 'ar-jax')),
    (10, 256, ('magnet-jax', 'ar-jax')),
    (10, 64, ('magnet-jax-fp32', 'audiocraft-fp32')),
    (30, 16, ('magnet-jax', 'audiocraft')),
    (30, 64, ('magnet-jax', 'ar-jax')),
    (30, 256, ('magnet-jax',)),
)
GPU_EFFICIENCY = 0.3  # fraction of the bfloat16 matmul peak masked decoding is assumed to reach on a GPU (budget).
FP32_SLOWDOWN = 8.0   # float32 against the bfloat16 peak on a GPU (TF32 or not), for the budget.
# First-call overhead before any is observed (worker start, weights, compilation), seconds: (CPU, GPU).
OVERHEAD_S = {'audiocraft-compile': (30.0, 180.0), 'audiocraft': (15.0, 40.0), 'audiocraft-fp32': (15.0, 40.0)}
JAX_OVERHEAD_S = (10.0, 60.0)
TEXT_TOKENS = 16    # S: text-encoder states per description.
AR_TOP_K = 250      # MusicGen's sampling for the autoregressive baseline.
AR_CFG_COEF = 3.0


@dataclasses.dataclass(frozen=True)
class Group:
  """The cases measured together: every system on one model size, duration, batch and CFG setting."""
  config: str        # key of MODELS.
  duration_s: float  # seconds of audio (50 frames each).
  batch: int         # B.
  cfg: bool          # classifier-free guidance (a second, null-conditioned half of the batch).
  gpu: bool          # sizes and dtypes of a GPU run (real released sizes, bfloat16/float16).

  @property
  def name(self) -> str:
    return f'{self.config} {self.duration_s:g}s b{self.batch} cfg={"on" if self.cfg else "off"}'

  @property
  def model(self) -> MagnetConfig:
    """The LM config: float32 on CPU (bfloat16 is slow there), bfloat16 weights and compute on GPU."""
    dtype = 'bfloat16' if self.gpu else 'float32'
    return model_config(self.config, self.gpu, segment_duration=self.duration_s, dtype=dtype, param_dtype=dtype)

  @property
  def config_label(self) -> str:
    return config_label(self.config, self.gpu)

  @property
  def frames(self) -> int:
    """Frames requested (audiocraft's max_gen_len): 50 per second."""
    return int(round(self.duration_s * self.model.frame_rate))

  def output_frames(self, system: str) -> int:
    """Frames a system returns: masked decoding trims to whole spans (500 -> 498), the AR baseline does not."""
    if system == 'ar-jax':
      return self.frames
    return output_length(self.frames, self.model.span_len, DecodingConfig().span_arrangement)


def system_model(group: Group, system: str) -> MagnetConfig:
  """The LM config `system` runs for `group`: the group's, in float32 for the '-fp32' systems."""
  if system.endswith('-fp32'):
    return dataclasses.replace(group.model, dtype='float32', param_dtype='float32')
  return group.model


def model_config(name: str, gpu: bool, **overrides) -> MagnetConfig:
  """MODELS[name] as a MagnetConfig; on CPU a released size keeps its widths with REDUCED_LAYERS layers."""
  sizes = dict(MODELS[name])
  if name in RELEASED and not gpu:
    sizes['num_layers'] = REDUCED_LAYERS
  return MagnetConfig(**{**sizes, **overrides})


def config_label(name: str, gpu: bool) -> str:
  """The rows' config name: a released size run with fewer layers says so ('small-4l')."""
  return f'{name}-{REDUCED_LAYERS}l' if name in RELEASED and not gpu else name


def grid(configs, durations, batches, cfgs, gpu: bool) -> list[Group]:
  """Every combination, model size outermost."""
  product = itertools.product(configs, durations, batches, cfgs)
  return [Group(c, float(d), int(b), bool(g), gpu) for c, d, b, g in product]


def generate_flops(group: Group, system: str) -> float:
  """Model FLOPs of one generate call: what the system computes (the reference its full attention and K heads)."""
  model, decoding = group.model, DecodingConfig()
  rows = group.batch * (2 if group.cfg else 1)
  if system == 'ar-jax':  # T + K - 1 one-frame steps over a growing cache (mean T / 2 keys), K heads
    steps = group.frames + model.n_q - 1
    return steps * forward_flops(model, rows, 1, TEXT_TOKENS, keys=steps / 2, heads=model.n_q)
  reference = system.startswith('audiocraft')
  return decode_flops(model, decoding.decoding_steps, rows, group.output_frames(system), TEXT_TOKENS,
                      full_attention=reference, heads=model.n_q if reference else 1)


def cpu_efficiency(model: MagnetConfig) -> float:
  """Fraction of the measured square-matmul rate a CPU forward of `model` is assumed to reach (pessimistic): 12.5%
  at width 256 and below, where per-op overhead and the non-matmul work outweigh the small matmuls, rising with the
  width to 50% from width 1024, where the forward is its matmuls ([2BT, 1024] x [1024, 4096] runs at the 2048^3
  rate on 2 cores) plus attention and the per-level heads."""
  return min(max(0.125 * model.dim / 256, 0.125), 0.5)


def estimate_seconds(group: Group, system: str, matmul_flops: float, floor_s: float = 0.0) -> float:
  """A pessimistic latency guess of one call, only to skip runs that cannot fit the time budget: masked decoding at
  `cpu_efficiency` of the device's matmul rate on a CPU, GPU_EFFICIENCY of its peak on a GPU (float32
  FP32_SLOWDOWN x slower); the autoregressive baseline, whose steps are one frame each, at 2% plus 2 ms per step.
  `floor_s`: a latency this system showed on a smaller case, added (per-call overheads).
  """
  flops = generate_flops(group, system)
  if group.gpu and system.endswith('-fp32'):
    matmul_flops /= FP32_SLOWDOWN
  if system == 'ar-jax':
    return floor_s + flops / (0.02 * matmul_flops) + 2e-3 * (group.frames + group.model.n_q)
  return floor_s + flops / ((GPU_EFFICIENCY if group.gpu else cpu_efficiency(group.model)) * matmul_flops)


def overhead_seconds(group: Group, system: str) -> float:
  """The first call's extra cost before one is observed: worker start, weights, compilation."""
  return OVERHEAD_S.get(system, JAX_OVERHEAD_S)[group.gpu]


def estimate_bytes(group: Group, system: str) -> float:
  """Peak memory guess of one system's process: weights, the largest activations, the runtime itself."""
  model = system_model(group, system)
  width = 2 if group.gpu and not system.endswith('-fp32') else 4  # bfloat16 / float16 on a GPU
  params = params_millions(model) * 1e6
  rows = group.batch * (2 if group.cfg else 1)
  length = group.output_frames(system)
  if system == 'ar-jax':
    steps = group.frames + model.n_q
    activations = 2 * model.num_layers * rows * steps * model.dim * width  # the KV cache
  else:
    reference = system.startswith('audiocraft')
    scores = rows * model.num_heads * length * length * 4 * (2 if reference else 1)  # attention (+ its mask)
    logits = rows * length * model.card * 4 * 3 * (model.n_q if reference else 1)   # logits, probs, guided
    activations = scores + logits + rows * length * model.mlp_dim * 4 * 2
  runtime = 1.5e9 if group.gpu else 0.6e9
  return params * width + activations + runtime


def tokens(group: Group, system: str) -> int:
  """Tokens one generate call produces: B x K x frames."""
  return group.batch * group.model.n_q * group.output_frames(system)
