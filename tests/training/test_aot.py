"""Ahead-of-time plans (training/aot.py): the tiny config's train step and decoder compiled for a v5e:2x2 that this
machine does not have. Skipped, with libtpu's reason, only where libtpu cannot load (the [tpu] extra)."""
import pytest

from magnet_jax.configs import tiny
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.flops import params_millions
from magnet_jax.training import aot, chips
from magnet_jax.training.trainer import validate

TOPOLOGY = 'v5e:2x2'
# XLA's FLOPs (the layers unrolled, so that no loop body is counted once) against the analytic model count: XLA
# adds the non-matmul work (softmax, norms, the loss, AdamW), large next to the matmuls of a 64-wide model.
FLOPS_FACTOR = 2.0


@pytest.fixture(scope='module')
def libtpu():
  try:
    aot.topology_devices(TOPOLOGY)
  except aot.TopologyError as e:
    pytest.skip(f'libtpu cannot load here: {e}')


def _config(**model):
  config = tiny.get_config()
  config.model.update(scan_layers=False, **model)
  config.sharding.preset = 'fsdp'
  return config


@pytest.fixture(scope='module')
def train_plan(libtpu):
  return aot.plan_training(_config(), TOPOLOGY)


def test_train_plan_reads_memory_flops_and_collectives(train_plan):
  plan = train_plan
  assert plan.fits and plan.chips == 4 and plan.chip == 'v5e' and plan.mesh == {'data': 4, 'model': 1}
  memory = plan.memory
  assert memory['argument'] > 0 and memory['temp'] > 0 and memory['alias'] > 0  # the donated state is aliased
  assert memory['total'] == memory['argument'] + memory['output'] - memory['alias'] + memory['temp'] + memory['code']
  # FSDP gathers the params and all-reduces the gradients (or reduce-scatters them) across the 4 chips.
  assert 'all-gather' in plan.collectives and plan.ici_s > 0
  # Each chip gathers the bfloat16 weights for the forward and again for the backward (XLA keeps no gathered copy).
  gathered = 2 * params_millions(validate(_config())) * 1e6 * 2
  assert 0.5 < plan.collectives['all-gather']['bytes'] / gathered < 1.5, plan.collectives
  assert plan.step_s == max(plan.compute_s, plan.hbm_s, plan.ici_s) > 0 and 0 < plan.mfu < 1
  assert 'memory per chip' in aot.describe(plan)


def test_xla_flops_agree_with_the_analytic_count(train_plan):
  ratio = train_plan.xla_flops / train_plan.hardware_flops
  assert 1 / FLOPS_FACTOR <= ratio <= FLOPS_FACTOR, ratio


def test_an_oversized_model_does_not_fit(libtpu):
  # 2 layers of width 8192: 1.6 B params, 26 GB of params and Adam moments per chip without sharding.
  config = _config(dim=8192, num_heads=64, num_layers=2)
  config.sharding.preset = 'data_parallel'
  plan = aot.plan_training(config, TOPOLOGY)
  assert not plan.fits
  assert plan.message.startswith('does not fit: needs ') and "v5e chip's 16.0 GiB" in plan.message
  assert plan.memory['total'] > plan.memory['usable'] > 0.9 * 16 * chips.GIB  # XLA's figures, from its error
  assert 'sharding.preset=fsdp' in plan.message
  assert len(aot.describe(plan).splitlines()) == 2  # what was planned, then the one line


def test_decoder_plan(libtpu):
  model = MagnetConfig(dim=64, num_heads=4, num_layers=2, card=32, text_dim=16, dtype='bfloat16',
                       param_dtype='bfloat16')
  plan = aot.plan_decoding(model, 1.0, 2, TOPOLOGY, text=4)
  assert plan.fits and plan.chips == 1 and plan.frames == 48 and plan.memory['total'] > 0
  # The decoding steps and layers are loops XLA counts once: the analytic count is many times its FLOPs.
  assert 0 < 10 * plan.xla_flops < plan.hardware_flops
  assert plan.hbm_s * chips.by_name('v5e').hbm_bandwidth >= plan.bytes_floor > 0
  assert plan.step_s > 0 and not plan.collectives


def test_collectives_multiply_loop_bodies_by_their_trip_counts():
  hlo = '\n'.join([
      'HloModule m', '',
      '%body (p: (s32[], f32[4])) -> (s32[], f32[4]) {',
      '  %ar = f32[4]{0} all-reduce(f32[4]{0} %x), replica_groups={}, to_apply=%add',
      '}', '',
      '%cond (p: (s32[], f32[4])) -> pred[] {', '  %c = pred[] constant(true)', '}', '',
      'ENTRY %main (a: f32[4]) -> f32[4] {',
      '  %w = (s32[], f32[4]) while((s32[], f32[4]) %t), condition=%cond, body=%body, '
      'backend_config={"known_trip_count":{"n":"3"}}',
      '  %ag = bf16[8,2]{1,0} all-gather(bf16[2,2]{1,0} %y), dimensions={0}',
      '}'])
  found = aot.collectives(hlo)
  assert found['all-reduce'] == {'count': 3, 'bytes': 3 * 16 * 2.0}  # ring all-reduce: twice its bytes
  assert found['all-gather'] == {'count': 1, 'bytes': 32.0}


def test_collectives_read_tpu_loops_and_async_collectives():
  # TPU's compiled HLO: no known_trip_count (the trip count is the condition's bound less the counter's start) and
  # each async all-gather repeated in the fusions that start, use and finish it (one channel_id, one transfer).
  hlo = '\n'.join([
      'HloModule m', '',
      '%start (p: bf16[2,2]) -> (bf16[2,2], bf16[8,2]) {',
      '  %ag.1 = bf16[8,2]{1,0:T(8,128)} all-gather(%p), channel_id=7, dimensions={0}',
      '  ROOT %cc = (bf16[2,2]{1,0}, bf16[8,2]{1,0}) custom-call(%ag.1), custom_call_target="Start"',
      '}', '',
      '%done (p: bf16[2,2]) -> bf16[8,2] {',
      '  %ag.2 = bf16[8,2]{1,0:T(8,128)} all-gather(%p), channel_id=7, dimensions={0}',
      '  ROOT %cc = bf16[8,2]{1,0} custom-call(%p, %ag.2), custom_call_target="Done"',
      '}', '',
      '%body (p: (s32[], f32[4])) -> (s32[], f32[4]) {',
      '  %s = (bf16[2,2]{1,0}, bf16[8,2]{1,0}) fusion(%y), kind=kCustom, calls=%start',
      '  %d = bf16[8,2]{1,0} fusion(%s), kind=kCustom, calls=%done',
      '}', '',
      '%cond (p: (s32[], f32[4])) -> pred[] {',
      '  %constant.9 = s32[]{:T(128)} constant(24)',
      '  %gte = s32[]{:T(128)} get-tuple-element(%p), index=0',
      '  ROOT %lt = pred[]{:T(512)} compare(%gte, %constant.9), direction=LT',
      '}', '',
      'ENTRY %main (a: f32[4]) -> f32[4] {',
      '  %constant.1 = s32[]{:T(128)} constant(1)',
      '  %copy.1 = s32[]{:T(128)} copy(%constant.1)',
      '  %tuple.1 = (s32[]{:T(128)}, f32[4]{0}) tuple(%copy.1, %a)',
      '  %w = (s32[]{:T(128)}, f32[4]{0}) while(%tuple.1), condition=%cond, body=%body',
      '}'])
  assert aot.collectives(hlo) == {'all-gather': {'count': 23, 'bytes': 23 * 32.0}}


@pytest.mark.parametrize('name, topology', [('v5e-16', 'v5e:4x4'), ('v5litepod-8', 'v5e:2x4'), ('v5p-8', 'v5p:2x2x1'),
                                            ('v5p-128', 'v5p:4x4x4'), ('v6e-256', 'v6e:16x16'), ('v6e:2x4', 'v6e:2x4')])
def test_slice_names(name, topology):
  assert chips.topology_name(name) == topology


@pytest.mark.parametrize('name', ['v5e-12', 'v5p-3', 'h100-8', 'v5e'])
def test_bad_slice_names(name):
  with pytest.raises(ValueError, match='--topology='):
    chips.topology_name(name)
