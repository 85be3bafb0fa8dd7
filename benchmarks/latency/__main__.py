"""Latency and throughput benchmark: magnet-jax against audiocraft, side by side (benchmarks/README.md).

  python -m benchmarks.latency --configs=tiny,compute --durations=10 --batches=1 --out=benchmarks/results/cpu.json
  python -m benchmarks.latency --quick --out=/tmp/bench.json      # smoke run: tiny, 1 s, one repeat
  python -m benchmarks.latency --configs=small,medium --durations=10,30 --batches=1,4,16 \\
      --out=benchmarks/results/gpu.json                                   # real sizes, on a GPU
"""
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
_BUDGET = flags.DEFINE_float('budget_s', 900.0, 'skip a system whose estimated time for a case exceeds this; '
                             'also the timeout of one call')
_TRAIN_CONFIGS = flags.DEFINE_list('train_configs', 'tiny,compute', 'model sizes of the training-step rows '
                                   '(empty: none)')
_TRAIN_BATCH = flags.DEFINE_integer('train_batch', 8, 'global batch of the training step')
_TRAIN_FRAMES = flags.DEFINE_integer('train_frames', 500, 'frames per training example')
_TRAIN_STEPS = flags.DEFINE_integer('train_steps', 5, 'timed training steps, after the compiling one')
_QUICK = flags.DEFINE_bool('quick', False, 'smoke run: tiny, 1 s, batch 1, one repeat, one short training step '
                           '(flags given explicitly still win)')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/latest.json', 'JSON results file (written atomically)')

# --quick: values for the flags not given on the command line.
QUICK = {'configs': ['tiny'], 'durations': ['1'], 'batches': ['1'], 'repeats': 1, 'train_configs': ['tiny'],
         'train_batch': 2, 'train_frames': 50, 'train_steps': 1}


def _choices(name: str, values: list[str], allowed) -> tuple[str, ...]:
  bad = [v for v in values if v not in allowed]
  if bad or not values:
    raise ValueError(f'--{name}={",".join(values)}: expected values among {",".join(allowed)}')
  return tuple(values)


def settings_from_flags() -> runner.Settings:
  """Validated Settings from the command line (--quick fills the flags not given)."""
  values = {name: flags.FLAGS[name].value for name in
            ('configs', 'durations', 'batches', 'repeats', 'train_configs', 'train_batch', 'train_frames',
             'train_steps')}
  if _QUICK.value:
    values.update({k: v for k, v in QUICK.items() if not flags.FLAGS[k].present})
  durations = tuple(float(d) for d in values['durations'])
  if not durations or any(d < 1 or d != int(d) for d in durations):
    raise ValueError(f'--durations={_DURATIONS.value}: whole seconds >= 1 (audiocraft sizes its masks in seconds)')
  batches = tuple(int(b) for b in values['batches'])
  if not batches or min(batches) < 1 or values['repeats'] < 1:
    raise ValueError('--batches and --repeats must be >= 1')
  return runner.Settings(
      configs=_choices('configs', values['configs'], spec.MODELS), durations=durations, batches=batches,
      cfgs=tuple(c == 'on' for c in _choices('cfg', _CFG.value, ('on', 'off'))),
      systems=_choices('systems', _SYSTEMS.value, spec.SYSTEMS), repeats=values['repeats'], budget_s=_BUDGET.value,
      train_configs=tuple(values['train_configs']) and _choices('train_configs', values['train_configs'], spec.MODELS),
      train_batch=values['train_batch'], train_frames=values['train_frames'], train_steps=values['train_steps'],
      command=' '.join(['python -m benchmarks.latency'] + sys.argv[1:]))


def main() -> None:
  results = runner.run(settings_from_flags())
  print(report.markdown(results))
  report.write_json(results, _OUT.value)
  print(f'\nwrote {_OUT.value}')


if __name__ == '__main__':  # workers are spawned: they import this module without running it
  cli.run('python -m benchmarks.latency', main)
