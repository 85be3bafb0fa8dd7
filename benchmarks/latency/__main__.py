"""Latency and throughput benchmark: magnet-jax against audiocraft, side by side (benchmarks/README.md).

  python -m benchmarks.latency --configs=tiny,compute --durations=10 --batches=1 --out=benchmarks/results/cpu.json
  python -m benchmarks.latency --quick --out=/tmp/bench.json      # smoke run: tiny, 1 s, one repeat
  python -m benchmarks.latency --gpu --out=OUT/results.json       # the GPU plan in < 8 min (benchmarks/gpu.sh)
  python -m benchmarks.latency --gpu --dry-run --out=/tmp/dry/results.json   # its CPU rehearsal (CI)
"""
import os
import sys

from absl import flags

from benchmarks.latency import report, runner, spec
from magnet_jax.apps import runner as cli

_CONFIGS = flags.DEFINE_list('configs', 'tiny,compute', f'model sizes: {",".join(spec.MODELS)}')
_DURATIONS = flags.DEFINE_list('durations', '10', 'seconds of audio to generate (whole seconds)')
_BATCHES = flags.DEFINE_list('batches', '1', 'examples per generate call')
_CFG = flags.DEFINE_list('cfg', 'on', 'classifier-free guidance: on, off or on,off')
_SYSTEMS = flags.DEFINE_list('systems', ','.join(spec.DEFAULT_SYSTEMS), f'systems: {",".join(spec.SYSTEMS)}')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'warm calls per system and case, after the compiling one')
_BUDGET = flags.DEFINE_float('budget-s', 900.0, 'skip a system whose estimated time for a case exceeds this; '
                             'also the timeout of one call')
_TRAIN_CONFIGS = flags.DEFINE_list('train-configs', 'tiny,compute', 'model sizes of the training-step rows '
                                   '(empty: none)')
_TRAIN_BATCH = flags.DEFINE_integer('train-batch', 8, 'global batch of the training step')
_TRAIN_FRAMES = flags.DEFINE_integer('train-frames', 500, 'frames per training example')
_TRAIN_STEPS = flags.DEFINE_integer('train-steps', 5, 'timed training steps, after the compiling one')
_QUICK = flags.DEFINE_bool('quick', False, 'smoke run: tiny, 1 s, batch 1, one repeat, one short training step '
                           '(flags given explicitly still win)')
_GPU = flags.DEFINE_bool('gpu', False, 'the GPU plan (spec.GPU_PLAN: magnet-small, 10 and 30 s, batch 1-256, '
                         'bf16 and fp32, audiocraft fp16/fp32/compile, ar-jax) within --deadline-s, a profile of one '
                         'decode (flags given explicitly still win)')
_DRY_RUN = flags.DEFINE_bool('dry-run', False, 'with --gpu: rehearse on a CPU (tiny model, 1 s, the plan\'s first '
                             'case, one repeat)')
_DEADLINE = flags.DEFINE_float('deadline-s', 0.0, 'time budget of the whole run: a case whose estimate no longer fits '
                               'is skipped (0: none)')
_PROFILE = flags.DEFINE_string('profile-dir', '', 'save a jax.profiler trace of one magnet-jax decode (the first '
                               'case) here')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/latest.json', 'JSON results file (written atomically; the '
                           'Markdown table goes beside it, .md)')

# --quick: values for the flags not given on the command line.
QUICK = {'configs': ['tiny'], 'durations': ['1'], 'batches': ['1'], 'repeats': 1, 'train_configs': ['tiny'],
         'train_batch': 2, 'train_frames': 50, 'train_steps': 1}
# --gpu: 8 minutes on one H100/H200 in all, of which ~1 min installing wheels, exporting and loading weights.
GPU = {'configs': ['small'], 'repeats': 3, 'train_configs': [], 'budget_s': 240.0, 'deadline_s': 400.0}
# --gpu --dry-run: the CPU rehearsal (CI), under a minute.
DRY_RUN = {'configs': ['tiny'], 'repeats': 1, 'train_configs': [], 'budget_s': 120.0, 'deadline_s': 0.0}


def _choices(name: str, values: list[str], allowed) -> tuple[str, ...]:
  bad = [v for v in values if v not in allowed]
  if bad or not values:
    raise ValueError(f'--{name}={",".join(values)}: expected values among {",".join(allowed)}')
  return tuple(values)


def settings_from_flags() -> runner.Settings:
  """Validated Settings from the command line (--quick fills the flags not given)."""
  values = {name: flags.FLAGS[name.replace('_', '-')].value for name in
            ('configs', 'durations', 'batches', 'repeats', 'train_configs', 'train_batch', 'train_frames',
             'train_steps', 'budget_s', 'deadline_s', 'profile_dir')}
  if _DRY_RUN.value and not _GPU.value:
    raise ValueError('--dry-run rehearses --gpu: give both')
  preset = (DRY_RUN if _DRY_RUN.value else GPU) if _GPU.value else QUICK if _QUICK.value else {}
  values.update({k: v for k, v in preset.items() if not flags.FLAGS[k.replace('_', '-')].present})
  plan = None
  if _GPU.value:
    plan = spec.GPU_PLAN
    if _DRY_RUN.value:
      _, batch, systems = spec.GPU_PLAN[0]
      plan = ((1, batch, systems),)
    if not flags.FLAGS['profile-dir'].present:
      values['profile_dir'] = os.path.join(os.path.dirname(os.path.abspath(_OUT.value)), 'profile')
  durations = tuple(float(d) for d in values['durations'])
  if not durations or any(d < 1 or d != int(d) for d in durations):
    raise ValueError(f'--durations={_DURATIONS.value}: whole seconds >= 1 (audiocraft sizes its masks in seconds)')
  batches = tuple(int(b) for b in values['batches'])
  if not batches or min(batches) < 1 or values['repeats'] < 1:
    raise ValueError('--batches and --repeats must be >= 1')
  return runner.Settings(
      configs=_choices('configs', values['configs'], spec.MODELS), durations=durations, batches=batches,
      cfgs=tuple(c == 'on' for c in _choices('cfg', _CFG.value, ('on', 'off'))),
      systems=_choices('systems', _SYSTEMS.value, spec.SYSTEMS), repeats=values['repeats'],
      budget_s=values['budget_s'],
      train_configs=tuple(values['train_configs']) and _choices('train-configs', values['train_configs'], spec.MODELS),
      train_batch=values['train_batch'], train_frames=values['train_frames'], train_steps=values['train_steps'],
      plan=plan, deadline_s=values['deadline_s'], profile_dir=values['profile_dir'],
      require_gpu=_GPU.value and not _DRY_RUN.value, command=' '.join(['python -m benchmarks.latency'] + sys.argv[1:]))


def main() -> None:
  results = runner.run(settings_from_flags())
  print(report.write(results, _OUT.value))
  print(f'wrote {_OUT.value} and its .md')


if __name__ == '__main__':  # workers are spawned: they import this module without running it
  cli.run('python -m benchmarks.latency', main)
