"""Plans before hardware: the real sharded train step, or the one-program decoder, lowered and compiled for a TPU
topology this machine does not have (libtpu describes its devices; nothing runs), read as a plan.

A plan holds, per chip: XLA's memory (arguments, outputs, aliased, temporaries, generated code) against the chip's
HBM; XLA's FLOPs and bytes beside the analytic model FLOPs (`models/flops.py`); the collectives of the compiled
HLO with their bytes; and a roofline time, the largest of FLOPs / peak, bytes / HBM bandwidth and collective bytes /
interconnect bandwidth (`chips.py`), with the tokens/s and MFU it implies. A program XLA cannot fit is a plan with
`fits=False` and one line saying what it needs and what would fit.

Loops: XLA's cost analysis counts a while loop's body once, and the layers (`scan_layers`) and decoding steps are
while loops. The roofline therefore takes its FLOPs from the analytic count (plus rematerialisation's extra
forward), and its HBM bytes from the larger of XLA's count and an analytic floor (`bytes_floor`: the weights read
by every pass and the optimizer's traffic; activations left out); collectives are counted from the HLO text with
each loop body multiplied by its trip count.
"""
import dataclasses
import functools
import math
import os
import re
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from magnet_jax.decoding import DecodingConfig, generate, output_length
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.flops import decode_flops, mfu_flops_per_step, params_millions
from magnet_jax.models.params import init_params
from magnet_jax.parallel.sharding import batch_sharding, make_mesh, replicated, rules_for
from magnet_jax.training import chips
from magnet_jax.training.finetune import FineTune
from magnet_jax.training.optim import make_optimizer
from magnet_jax.training.trainer import init_state, make_train_step, state_shardings, validate

COLLECTIVES = ('all-reduce', 'all-gather', 'reduce-scatter', 'all-to-all', 'collective-permute')
# Bytes a collective moves per chip, per byte of its result: a ring all-reduce is a reduce-scatter plus an
# all-gather (2 (n - 1) / n ~ 2); the others move about their result once.
_TRAFFIC = {'all-reduce': 2.0}
_DTYPE_BYTES = {'pred': 1, 's8': 1, 'u8': 1, 's16': 2, 'u16': 2, 'bf16': 2, 'f16': 2, 's32': 4, 'u32': 4, 'f32': 4,
                's64': 8, 'u64': 8, 'f64': 8, 'c64': 8}


class TopologyError(ValueError):
  """libtpu is missing or cannot describe the topology (a user error: the command says so in one line)."""


def topology_devices(topology: str, num_slices: int = 1) -> list[jax.Device]:
  """The compile-only devices of a TPU topology ('v5e:4x4' or a slice name, 'v5e-16'), `num_slices` of them.

  Raises:
    ValueError: a bad name or slice count.
    TopologyError: libtpu does not load here or does not know the topology.
  """
  if not 1 <= num_slices <= 64:
    raise ValueError(f'--num-slices={num_slices}: expected 1 to 64')
  name = chips.topology_name(topology)
  # Without these libtpu looks for the TPU VM it runs on and warns that it is not one.
  os.environ.setdefault('TPU_ACCELERATOR_TYPE', 'v5litepod-8')
  os.environ.setdefault('TPU_WORKER_HOSTNAMES', 'localhost')
  os.environ.setdefault('TPU_SKIP_MDS_QUERY', '1')
  # Every jax process that finds libtpu installed takes its lock file while it probes for a TPU; compiling for a
  # described topology needs no TPU, so it need not wait for them.
  os.environ.setdefault('ALLOW_MULTIPLE_LIBTPU_LOAD', '1')
  from jax.experimental import topologies
  try:
    kwargs = {'num_slices': num_slices} if num_slices > 1 else {}
    return list(topologies.get_topology_desc(platform='tpu', topology_name=name, **kwargs).devices)
  except Exception as e:  # noqa: BLE001 - libtpu reports a missing plugin and an unknown topology alike
    raise TopologyError(f'cannot describe TPU topology {name!r} here ({type(e).__name__}: {str(e)[:200]}); '
                        'install the [tpu] extra (libtpu)') from e


@dataclasses.dataclass
class Plan:
  """One compiled program on one topology; sizes are per chip, `*_s` seconds."""
  program: str                # 'train' | 'decode'.
  model: str                  # 'small-10s' ...
  params_m: float
  topology: str
  chips: int
  chip: str
  preset: str                 # sharding preset ('' for decoding).
  mesh: dict
  batch: int                  # global batch (examples).
  frames: int                 # T.
  fits: bool
  message: str = ''           # why it does not fit, and what would.
  hbm_bytes: float = 0.0      # the chip's HBM.
  memory: dict = dataclasses.field(default_factory=dict)   # argument, output, alias, temp, code, total (bytes)
  xla_flops: float = 0.0      # cost_analysis, loop bodies once.
  xla_bytes: float = 0.0
  model_flops: float = 0.0    # analytic, per chip.
  hardware_flops: float = 0.0  # model FLOPs plus rematerialisation's forward.
  bytes_floor: float = 0.0    # analytic HBM traffic floor: weights per pass, optimizer state.
  tokens: float = 0.0         # B x K x T per step or call.
  collectives: dict = dataclasses.field(default_factory=dict)  # op -> {'count', 'bytes'} per step, loops unrolled
  compute_s: float = 0.0
  hbm_s: float = 0.0
  ici_s: float = 0.0
  step_s: float = 0.0         # the roofline: max of the three (perfect overlap).
  bound: str = ''             # which of compute / hbm / ici sets it.
  tokens_per_s: float = 0.0
  mfu: float = 0.0            # model FLOPs / (step_s x peak): the roofline's MFU, an upper bound.
  lower_s: float = 0.0
  compile_s: float = 0.0

  def row(self) -> dict:
    return dataclasses.asdict(self)


def _shape_bytes(text: str) -> int:
  """Bytes of the arrays in an HLO shape string ('bf16[8,128]{1,0}' or a tuple of them)."""
  total = 0
  for dtype, dims in re.findall(r'\b([a-z]+\d*)\[([\d,]*)\]', text):
    if dtype in _DTYPE_BYTES:
      total += _DTYPE_BYTES[dtype] * math.prod(int(d) for d in dims.split(',') if d)
  return total


_COMPUTATION = re.compile(r'^(?:ENTRY )?%?([\w.\-]+) [^\n]*\{\s*$', re.M)
_INSTRUCTION = re.compile(r'=\s*(\(.*?\)|\S+)\s+(' + '|'.join(COLLECTIVES) + r')(-start)?\(')
_WHILE = re.compile(r'\swhile\((?:\(.*?\) )?%?([\w.\-]+)\).*condition=%?([\w.\-]+), body=%?([\w.\-]+)')
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"')
_CALLS = re.compile(r'(?:calls|to_apply|condition|branch_computations|async_execution_thread)=\{?%?([\w.\-]+)')
_DEFINE = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = (?:\(.*?\)|\S+) (constant|copy|tuple)\((-?\d+|%?[\w.\-]+)')
_CHANNEL = re.compile(r'\bchannel_id=(\d+)')
_COMPARE = re.compile(r'compare\(%?([\w.\-]+), %?([\w.\-]+)\), direction=(LT|LE|GT|GE)')


def _constant(lines: list[str], name: str) -> int | None:
  """The integer `name` holds in a computation's `lines`: a scalar constant, through copies and a tuple's first
  element (a while loop's counter starts there); None when it is computed."""
  defined = {m.group(1): m.groups()[1:] for m in map(_DEFINE.match, lines) if m}
  for _ in range(8):
    op, operand = defined.get(name, (None, None))
    if op == 'constant':
      return int(operand) if operand.lstrip('-').isdigit() else None
    if op is None:
      return None
    name = operand.lstrip('%')
  return None


def _trip_count(line: str, lines: list[str], bodies: dict[str, list[str]], condition: str) -> int:
  """How many times a while loop runs: XLA's known_trip_count when the instruction has it, else read from its
  condition (the counter compared with a constant; TPU's compiled HLO states it only there) and the counter's start
  in the loop's initial tuple (`lines`, the calling computation); 1 when neither says."""
  known = _TRIP.search(line)
  if known:
    return int(known.group(1))
  cond = bodies.get(condition, [])
  for compare in map(_COMPARE.search, cond):
    if not compare:
      continue
    counter, limit, direction = compare.groups()
    if direction in ('GT', 'GE'):  # limit > counter
      counter, limit = limit, counter
    bound = _constant(cond, limit)
    if bound is None:
      continue
    start = _constant(lines, _WHILE.search(line).group(1)) or 0
    return max(bound - start + (direction in ('LE', 'GE')), 1)
  return 1


def collectives(hlo: str) -> dict[str, dict[str, float]]:
  """{op: {'count', 'bytes'}} of one execution of a compiled HLO module: each collective's result bytes times the
  times it runs (a while body's trip count, nested loops multiplied), times `_TRAFFIC`'s ring factor."""
  bodies: dict[str, list[str]] = {}
  entry, name = None, None
  for line in hlo.splitlines():
    match = _COMPUTATION.match(line)
    if match and not line.startswith(' '):
      name = match.group(1)
      bodies[name] = []
      if line.startswith('ENTRY'):
        entry = name
    elif name is not None:
      bodies[name].append(line)
  calls: dict[str, list[tuple[str, int]]] = {}
  for comp, lines in bodies.items():
    for line in lines:
      loop = _WHILE.search(line)
      if loop:
        calls.setdefault(comp, []).append((loop.group(3), _trip_count(line, lines, bodies, loop.group(2))))
      calls.setdefault(comp, []).extend((c, 1) for c in _CALLS.findall(line) if c in bodies)
  times: dict[str, int] = {}

  def visit(comp: str, n: int, depth: int = 0) -> None:
    if depth > 64:
      return
    times[comp] = times.get(comp, 0) + n
    for callee, trip in calls.get(comp, ()):
      visit(callee, n * trip, depth + 1)

  visit(entry or next(iter(bodies), ''), 1)
  # TPU's async collectives repeat the collective in the fusions that start it, use it and finish it: one transfer,
  # one channel_id.
  runs: dict[tuple, tuple[str, int, float]] = {}
  for comp, lines in bodies.items():
    for i, line in enumerate(lines):
      match = _INSTRUCTION.search(line)
      if not match:
        continue
      shape, op, started = match.groups()
      size = _shape_bytes(shape)
      if started and op in ('all-gather', 'collective-permute'):  # (operand, result, ...): the result
        size = max(_shape_bytes(s) for s in re.findall(r'\w+\[[\d,]*\]', shape))
      channel = _CHANNEL.search(line)
      key = (op, channel.group(1)) if channel else (op, comp, i)
      n = max(times.get(comp, 0), runs.get(key, ('', 0, 0.0))[1])
      runs[key] = op, n, max(size, runs.get(key, ('', 0, 0.0))[2])
  found: dict[str, dict[str, float]] = {}
  for op, n, size in runs.values():
    entry_ = found.setdefault(op, {'count': 0, 'bytes': 0.0})
    entry_['count'] += n
    entry_['bytes'] += n * size * _TRAFFIC.get(op, 1.0)
  return found


def _memory(compiled) -> dict[str, int]:
  stats = compiled.memory_analysis()
  memory = {'argument': stats.argument_size_in_bytes, 'output': stats.output_size_in_bytes,
            'alias': stats.alias_size_in_bytes, 'temp': stats.temp_size_in_bytes,
            'code': stats.generated_code_size_in_bytes}
  memory['total'] = memory['argument'] + memory['output'] - memory['alias'] + memory['temp'] + memory['code']
  return memory


def _cost(compiled) -> tuple[float, float]:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', 0.0)), float(cost.get('bytes accessed', 0.0))


_SIZE = re.compile(r'([\d.]+)([KMGT])i?B?\b')


def _exhausted(message: str) -> tuple[float | None, float | None]:
  """(bytes needed, bytes XLA may use) from XLA's RESOURCE_EXHAUSTED message: its first two sizes ('Used 27.6G of
  15.75G hbm', 'HLO temporaries (27.62G) exceeds available HBM (15.75G)')."""
  sizes = [float(v) * 1024 ** ' KMGT'.index(u) for v, u in _SIZE.findall(message.split('RESOURCE_EXHAUSTED', 1)[-1])]
  return (sizes + [None, None])[0], (sizes[1:] + [None])[0]


def _does_not_fit(plan: Plan, chip: chips.Chip) -> str:
  """'does not fit: needs X GiB per chip, XLA can use Y of the v5e chip's Z GiB'."""
  needed, usable = plan.memory.get('total'), plan.memory.get('usable')
  head = f'does not fit: needs {needed / chips.GIB:.1f} GiB per chip' if needed else 'does not fit'
  return head + (f', XLA can use {usable / chips.GIB:.2f} of the {chip.name} chip\'s '
                 if usable else f', the {chip.name} chip has ') + f'{plan.hbm_bytes / chips.GIB:.1f} GiB'


def roofline(plan: Plan) -> Plan:
  """Fills the roofline fields from the counts in `plan` (also to recompute a stored row)."""
  chip = chips.by_name(plan.chip)
  plan.compute_s = plan.hardware_flops / chip.peak_flops
  plan.hbm_s = max(plan.xla_bytes, plan.bytes_floor) / chip.hbm_bandwidth
  plan.ici_s = sum(c['bytes'] for c in plan.collectives.values()) / chip.ici_bandwidth
  times = {'compute': plan.compute_s, 'hbm': plan.hbm_s, 'ici': plan.ici_s}
  plan.bound = max(times, key=times.get)
  plan.step_s = times[plan.bound]
  plan.tokens_per_s = plan.tokens / plan.step_s if plan.step_s else 0.0
  plan.mfu = plan.model_flops / (plan.step_s * chip.peak_flops) if plan.step_s else 0.0
  return plan


def train_bytes_floor(model: MagnetConfig, mesh: dict, preset: str) -> float:
  """HBM bytes one chip must move per train step at least: the float32 weights it computes with (all of them
  under data parallelism and FSDP, which gathers them; 1 / model under tensor parallelism) read by the forward,
  the backward's two products (and remat's second forward), and AdamW's read of params, gradients and two moments
  and write of three, on the chip's shard of them."""
  params = params_millions(model) * 1e6 * 4
  computed = params / mesh.get('model', 1)
  shard = params / (math.prod(mesh.values()) if preset == 'fsdp' else mesh.get('model', 1))
  return (3 + model.remat) * computed + 7 * shard


def decode_bytes_floor(model: MagnetConfig, decoding: DecodingConfig) -> float:
  """HBM bytes of one decode at least: every forward (one per step, both CFG halves together) reads the weights."""
  return sum(decoding.decoding_steps) * params_millions(model) * 1e6 * np.dtype(model.params_dtype).itemsize


def _compile(plan: Plan, lower) -> object | None:
  """Lowers and compiles into `plan` (times, memory, costs, collectives); None when XLA reports it does not fit."""
  start = time.perf_counter()
  lowered = lower()
  plan.lower_s = time.perf_counter() - start
  start = time.perf_counter()
  try:
    compiled = lowered.compile()
  except Exception as e:  # noqa: BLE001 - XLA raises its own error type; only out-of-memory is a plan
    if 'RESOURCE_EXHAUSTED' not in str(e):
      raise
    plan.compile_s = time.perf_counter() - start
    plan.fits = False
    needed, usable = _exhausted(str(e))
    plan.memory = {k: v for k, v in (('total', needed), ('usable', usable)) if v}
    return None
  plan.compile_s = time.perf_counter() - start
  plan.memory = _memory(compiled)
  plan.fits = plan.memory['total'] <= plan.hbm_bytes
  plan.xla_flops, plan.xla_bytes = _cost(compiled)
  plan.collectives = collectives(compiled.as_text())
  return compiled


def _abstract(tree, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def plan_training(config: ml_collections.ConfigDict, topology: str, num_slices: int = 1, name: str = '') -> Plan:
  """The train step of `config` (its model, batch, preset, mesh, LoRA and freezing, as `trainer.train` builds it)
  compiled for `topology` x `num_slices`; text conditions are `data.caption_len` states.

  Raises:
    ValueError: a config or mesh that training itself would refuse.
    TopologyError: no libtpu, or an unknown topology.
  """
  devices = topology_devices(topology, num_slices)
  chip = chips.chip_for(devices[0].device_kind)
  model = validate(config)
  tuning = FineTune(config, model)
  mesh = make_mesh(config.sharding.mesh, devices)
  batch, frames = int(config.train.batch_size), int(config.data.length or model.sequence_length)
  if batch % mesh.shape['data']:
    raise ValueError(f'train.batch_size={batch} is not divisible by the mesh data axis ({mesh.shape["data"]})')
  rules = rules_for(config.sharding.preset, config.sharding.rules)
  optimizer = tuning.optimizer(make_optimizer(config.optim, config.train.num_steps))
  ema = bool(config.optim.ema_decay)
  shardings = state_shardings(model, optimizer, mesh, rules, ema, tuning.params_fn)
  init = functools.partial(init_state, model, optimizer, ema=ema, params_fn=tuning.params_fn)
  state = _abstract(jax.eval_shape(init, jax.random.key(0)), shardings)
  base = None
  if tuning.lora:
    base = _abstract(jax.eval_shape(functools.partial(init_params, model), jax.random.key(0)),
                     tuning.base_shardings(mesh, rules))
  text = int(config.data.caption_len)
  data = batch_sharding(mesh)
  struct = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=data)
  inputs = {'codes': struct((batch, model.n_q, frames), jnp.int32),
            'cond': struct((batch, text, model.text_dim), jnp.float32),
            'cond_mask': struct((batch, text), jnp.bool_), 'padding_mask': struct((batch, frames), jnp.bool_)}
  rng = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=replicated(mesh))
  step = make_train_step(model, optimizer, config, mesh, rules, shardings, tuning, base)
  plan = Plan('train', name or _model_name(model), round(params_millions(model), 1), _topology_label(topology,
              num_slices), len(devices), chip.name, str(config.sharding.preset), dict(mesh.shape), batch, frames,
              fits=True, hbm_bytes=chip.hbm_bytes)
  compiled = _compile(plan, lambda: step.lower(state, inputs, rng))
  model_flops = mfu_flops_per_step(model, batch, frames, text)
  forward = model_flops / 3
  plan.model_flops = model_flops / len(devices)
  plan.hardware_flops = (model_flops + (forward if model.remat else 0.0)) / len(devices)
  if compiled is None or not plan.fits:
    plan.message = _advice(plan, state, mesh, chip)
    return plan
  plan.bytes_floor = train_bytes_floor(model, plan.mesh, plan.preset)
  plan.tokens = batch * model.n_q * frames
  return roofline(plan)


def _state_bytes(state) -> float:
  """Bytes of one chip's shard of the (abstract, sharded) train state."""
  return float(sum(math.prod(leaf.sharding.shard_shape(leaf.shape)) * np.dtype(leaf.dtype).itemsize
                   for leaf in jax.tree.leaves(state)))


def _advice(plan: Plan, state, mesh, chip: chips.Chip) -> str:
  """'does not fit: needs X GiB per chip, ...; would fit with: ...' (estimates: the train state's shard
  is exact, the rest is taken to grow with the per-chip batch)."""
  needed = plan.memory.get('total')
  head = _does_not_fit(plan, chip)
  fixed = _state_bytes(state) * 4 / 3  # params + Adam's two moments, plus the gradients (the params' size)
  options = []
  data = mesh.shape['data']
  if needed and needed > fixed and fixed < 0.9 * plan.hbm_bytes:
    per_chip = plan.batch / data
    fitting = int(per_chip * (0.9 * plan.hbm_bytes - fixed) / (needed - fixed))
    if fitting >= 1:
      options.append(f'train.batch_size={fitting * data} ({fitting} per data shard)')
  if plan.preset != 'fsdp' and data > 1:
    options.append('sharding.preset=fsdp (params and optimizer state split over the chips)')
  if needed:
    larger = max(chips.CHIPS, key=lambda c: c.hbm_bytes if c.name.startswith('v') else 0)  # the roomiest TPU
    if plan.preset == 'fsdp':
      chips_needed = 2 ** math.ceil(math.log2(max(2.0, plan.chips * needed / (0.9 * plan.hbm_bytes))))
      options.append(f'a slice of >= {chips_needed} chips at the same per-chip batch')
    elif chip.hbm_bytes < larger.hbm_bytes:
      options.append(f'more memory per chip (e.g. {larger.name}, {larger.hbm_bytes / chips.GIB:.0f} GiB)')
  return head + ('; would fit with: ' + ' / '.join(options) if options else '')


def _topology_label(topology: str, num_slices: int) -> str:
  return topology + (f' x{num_slices}' if num_slices > 1 else '')


def _model_name(model: MagnetConfig) -> str:
  return f'{params_millions(model):.3g}M-{model.segment_duration:g}s'


def plan_decoding(model: MagnetConfig, duration_s: float, batch: int, topology: str | None, text: int = 16,
                  decoding: DecodingConfig | None = None, name: str = '') -> Plan:
  """The one-program decoder (`decoding.generate`, classifier-free guidance on: 2 x `batch` rows) of `batch`
  clips of `duration_s` seconds, compiled for one chip of `topology` (None: this machine's first device, e.g. a
  GPU, to set a prediction beside a measurement); `text` conditioning states per clip. The
  roofline time is a latency floor for one generate call (the codec decode not included).

  Raises:
    ValueError: a bad batch or duration.
    TopologyError: no libtpu, or an unknown topology.
  """
  if not 1 <= batch <= 4096 or not 0 < duration_s <= 600:
    raise ValueError(f'batch={batch} (1 to 4096), duration_s={duration_s} (0 to 600]: out of range')
  decoding = decoding or DecodingConfig()
  device = topology_devices(topology)[0] if topology else jax.devices()[0]
  chip = chips.chip_for(device.device_kind)
  topology = topology or device.device_kind
  sharding = jax.sharding.SingleDeviceSharding(device)
  frames = int(round(duration_s * model.frame_rate))
  struct = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
  params = jax.tree.map(lambda x: struct(x.shape, model.params_dtype),
                        jax.eval_shape(functools.partial(init_params, model), jax.random.key(0)))
  cond, cond_mask = struct((batch, text, model.text_dim), model.compute_dtype), struct((batch, text), jnp.bool_)
  rng = struct((), jax.random.key(0).dtype)
  length = output_length(frames, model.span_len, decoding.span_arrangement)
  name = name or f'{params_millions(model):.3g}M-{duration_s:g}s'
  plan = Plan('decode', name, round(params_millions(model), 1), topology, 1, chip.name, '', {},
              batch, length, fits=True, hbm_bytes=chip.hbm_bytes)
  compiled = _compile(plan, lambda: generate.lower(params, cond, cond_mask, rng, lm_config=model, decoding=decoding,
                                                   length=frames))
  plan.model_flops = plan.hardware_flops = decode_flops(model, decoding.decoding_steps, 2 * batch, length, text)
  if compiled is None or not plan.fits:
    plan.message = _does_not_fit(plan, chip) + '; would fit with: a smaller batch'
    return plan
  plan.bytes_floor = decode_bytes_floor(model, decoding)
  plan.tokens = batch * model.n_q * length
  return roofline(plan)


def _gib(x: float | None) -> str:
  if x is None:
    return '-'
  return f'{x / chips.GIB:.2f} GiB' if x >= 2 ** 28 else f'{x / 2 ** 20:.1f} MiB'


def describe(plan: Plan) -> str:
  """The plan as text for a terminal: one line when it does not fit."""
  chip = chips.by_name(plan.chip)
  where = f'{plan.model} {plan.program} on {plan.topology} ({plan.chips} x {plan.chip})'
  if plan.preset:
    where += f', {plan.preset} mesh {plan.mesh}'
  where += f', batch {plan.batch} x {plan.frames} frames; lowered {plan.lower_s:.1f} s, compiled {plan.compile_s:.1f} s'
  if not plan.fits:
    return f'{where}\n{plan.message}'
  m = plan.memory
  lines = [where,
           f'memory per chip: arguments {_gib(m["argument"])}, outputs {_gib(m["output"])} (aliased '
           f'{_gib(m["alias"])}), temporaries {_gib(m["temp"])}, code {_gib(m["code"])}: total {_gib(m["total"])} '
           f'of {_gib(plan.hbm_bytes)} HBM ({m["total"] / plan.hbm_bytes:.0%})',
           f'FLOPs per chip: model {plan.model_flops:.3g} (analytic), with remat {plan.hardware_flops:.3g}; XLA '
           f'{plan.xla_flops:.3g} (loop bodies counted once); HBM bytes XLA {plan.xla_bytes:.3g} (loop bodies once), '
           f'analytic floor {plan.bytes_floor:.3g}',
           'collectives per step: ' + (', '.join(f'{op} x{c["count"]:.0f} {_gib(c["bytes"])}'
                                                 for op, c in sorted(plan.collectives.items())) or 'none'),
           f'roofline: compute {plan.compute_s * 1e3:.1f} ms ({chip.peak_flops / 1e12:.0f} TFLOP/s), HBM '
           f'{plan.hbm_s * 1e3:.1f} ms ({chip.hbm_bandwidth / 1e9:.0f} GB/s), ICI {plan.ici_s * 1e3:.1f} ms '
           f'({chip.ici_bandwidth / 1e9:.0f} GB/s) -> {plan.step_s * 1e3:.1f} ms per '
           f'{"step" if plan.program == "train" else "call"} ({plan.bound}-bound), {plan.tokens_per_s:,.0f} tokens/s, '
           f'MFU {plan.mfu:.0%} (an upper bound: perfect overlap, no host or input cost)']
  return '\n'.join(lines)
