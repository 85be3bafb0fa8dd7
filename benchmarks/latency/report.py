"""Results: the JSON rows, speed ratios within a run, the Markdown table, the atomic JSON write.

Ratios compare rows of the same model size, duration, batch and CFG setting measured in the same run:
`x audiocraft` = audiocraft eager's median latency / the row's, `x ar-jax` = ar-jax's median / the row's (so > 1
means the row's system is faster).
"""
import json
import pathlib

from benchmarks.latency import spec
from benchmarks.latency.measure import Timing
from magnet_jax.io.files import atomic_write
from magnet_jax.models.flops import mfu_flops_per_step

ROW_KEYS = ('system', 'config', 'params_m', 'duration_s', 'batch', 'cfg', 'compile_s', 'latency_s_median',
            'latency_s_min', 'latency_s_max', 'warm_runs', 'tokens_per_s', 'samples_per_s', 'peak_mem_mb')
TRAIN_KEYS = ('config', 'params_m', 'batch', 'length', 'devices', 'compile_s', 'step_s_median', 'step_s_min',
              'step_s_max', 'steps_per_s', 'tokens_per_s', 'flops_per_step', 'peak_flops', 'peak_source', 'mfu',
              'peak_mem_mb')
BASELINES = ('audiocraft', 'ar-jax')


def _mb(peak: int | None) -> float | None:
  return None if peak is None else round(peak / 2 ** 20, 1)


def row(system: str, group: spec.Group, timing: Timing, peak: int | None) -> dict:
  """One generation row (exactly ROW_KEYS)."""
  return {
      'system': system, 'config': group.config_label, 'params_m': round(spec.params_millions(group.model), 3),
      'duration_s': group.duration_s, 'batch': group.batch, 'cfg': group.cfg, 'compile_s': round(timing.compile_s, 4),
      'latency_s_median': round(timing.median_s, 4), 'latency_s_min': round(min(timing.runs), 4),
      'latency_s_max': round(max(timing.runs), 4), 'warm_runs': len(timing.runs),
      'tokens_per_s': round(spec.tokens(group, system) / timing.median_s, 1),
      'samples_per_s': round(group.batch / timing.median_s, 3), 'peak_mem_mb': _mb(peak)}


def train_row(name: str, gpu: bool, batch: int, length: int, devices: int, timing: Timing, peak: int | None,
              peak_flops: float, peak_source: str) -> dict:
  """One training-step row (exactly TRAIN_KEYS)."""
  model = spec.model_config(name, gpu)
  flops = mfu_flops_per_step(model, batch, length, spec.TEXT_TOKENS)
  return {
      'config': spec.config_label(name, gpu), 'params_m': round(spec.params_millions(model), 3), 'batch': batch,
      'length': length, 'devices': devices, 'compile_s': round(timing.compile_s, 3),
      'step_s_median': round(timing.median_s, 4), 'step_s_min': round(min(timing.runs), 4),
      'step_s_max': round(max(timing.runs), 4), 'steps_per_s': round(1 / timing.median_s, 3),
      'tokens_per_s': round(batch * length * model.n_q / timing.median_s, 1), 'flops_per_step': flops,
      'peak_flops': peak_flops, 'peak_source': peak_source, 'mfu': round(flops / timing.median_s / peak_flops, 4),
      'peak_mem_mb': _mb(peak)}


def _key(r: dict) -> tuple:
  return r['config'], r['duration_s'], r['batch'], r['cfg']


def ratios(rows: list[dict]) -> list[dict[str, float | None]]:
  """Per row: {baseline: baseline median / row median} for the baselines measured with the same case."""
  medians = {(_key(r), r['system']): r['latency_s_median'] for r in rows}
  return [{b: (medians[(_key(r), b)] / r['latency_s_median'] if (_key(r), b) in medians else None)
           for b in BASELINES} for r in rows]


def _cell(value) -> str:
  if value is None:
    return '-'
  if isinstance(value, bool):
    return 'on' if value else 'off'
  if isinstance(value, float):
    return f'{value:,.0f}' if abs(value) >= 100 else f'{value:.3g}'
  return str(value)


def markdown(results: dict) -> str:
  """The results as Markdown: a header with the machine and load, the generation table, the training table."""
  machine, conditions = results['machine'], results['conditions']
  lines = [f'**{machine["cpu"]}**, GPU: {machine["gpu"] or "none"}, jax {machine["jax"]}, torch {machine["torch"]}; '
           f'load average (1/5/15 min) {conditions["load_avg_start"]} at start, {conditions["load_avg_end"]} at end.',
           '', f'`{results["command"]}`', '',
           '| system | config | params (M) | duration (s) | batch | CFG | compile (s) | median (s) | min (s) | max (s) '
           '| warm runs | tokens/s | samples/s | peak mem (MB) | x audiocraft | x ar-jax |',
           '|' + '---|' * 16]
  for r, ratio in zip(results['rows'], ratios(results['rows']), strict=True):
    cells = [r[k] for k in ROW_KEYS] + [ratio['audiocraft'], ratio['ar-jax']]
    lines.append('| ' + ' | '.join(_cell(c) for c in cells) + ' |')
  if results['train_rows']:
    lines += ['', '| train step | params (M) | batch | frames | devices | compile (s) | median step (s) | steps/s '
              '| tokens/s | model TFLOP/step | peak TFLOP/s | MFU | peak mem (MB) |', '|' + '---|' * 13]
    for r in results['train_rows']:
      cells = [r['config'], r['params_m'], r['batch'], r['length'], r['devices'], r['compile_s'], r['step_s_median'],
               r['steps_per_s'], r['tokens_per_s'], r['flops_per_step'] / 1e12, r['peak_flops'] / 1e12,
               f'{100 * r["mfu"]:.1f}%', r['peak_mem_mb']]
      lines.append('| ' + ' | '.join(_cell(c) for c in cells) + ' |')
    lines.append(f'\nPeak FLOP/s: {results["train_rows"][0]["peak_source"]}.')
  for s in results['skipped']:
    lines.append(f'- skipped {s["system"]} on {s["case"]}: {s["reason"]}')
  if results.get('profile'):
    lines.append(f'\nProfile (jax.profiler trace of one decode, {results["profile"]["case"]}): '
                 f'`{results["profile"]["folder"]}`')
  return '\n'.join(lines)


def write(results: dict, path: str) -> str:
  """Writes `results` to `path` (JSON, keys in the documented order) and its Markdown beside it (.md), each
  atomically; returns the Markdown."""
  text = json.dumps(results, indent=1) + '\n'
  table = markdown(results) + '\n'
  atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(text, encoding='utf-8'))
  atomic_write(str(pathlib.Path(path).with_suffix('.md')), lambda tmp: pathlib.Path(tmp).write_text(table, 'utf-8'))
  return table
