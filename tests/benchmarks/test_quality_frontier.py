"""The frontier's tables and forest plot from measured intervals (the measurement itself is the benchmark's run)."""
import json

from benchmarks import quality_frontier as frontier


def _interval(value):
  return {'value': value, 'low': value - 1, 'high': value + 1, 'shift': 0.5, 'level': 0.95, 'draws': 100, 'seed': 0}


def _versus(difference, p):
  return {'difference': difference, 'low': difference - 0.5, 'high': difference + 0.5, 'p_value': p,
          'significant': p < 0.05, 'level': 0.95, 'draws': 100, 'seed': 0}


def test_tables_mark_significant_differences_and_answer_the_cfg_question(tmp_path):
  def setting(group, value, cfg=(3.0, 1.0), versus=None):
    result = {'group': group, 'forwards': 25, 'seconds_per_clip': 1.0, 'decoding': {'max_cfg_coef': cfg[0],
              'min_cfg_coef': cfg[1]}, 'intervals': {m: _interval(value) for m in frontier.METRICS}}
    if versus:
      result['vs_shipped'] = {m: versus for m in frontier.METRICS}
    return result
  results = {frontier.SHIPPED: setting('shipped', 10.0),
             'cfg fixed 3': setting('cfg', 12.0, (3.0, 3.0), _versus(2.0, 0.01)),
             'steps 2/1/1/1': setting('steps', 10.5, versus=_versus(0.5, 0.4))}
  meta = {'generated_clips': 24, 'reference_clips': 212, 'draws': 100, 'floor_fad_halves': 5.0,
          'floor_kad_halves': 0.2, 'floor_fad_same_n': 12.0, 'floor_kad_same_n': 0.7,
          'cfg_pairs': {f'{frontier.SHIPPED} - cfg fixed 3': {m: _versus(-2.0, 0.01) for m in frontier.METRICS}}}
  out = str(tmp_path / 'frontier')
  (tmp_path / 'frontier.json').write_text(json.dumps({'meta': meta, 'results': results}))
  frontier._write(out, meta, results)
  table = (tmp_path / 'frontier.md').read_text()
  assert '| cfg fixed 3 | 25 | 1.00 | 12 [11, 13] |' in table and '**+2**' in table and '+0.5 (p=0.400)' in table
  assert '| cfg fixed 3 | 3.0 | 3.0 |' in table and f'| {frontier.SHIPPED} - cfg fixed 3 | **-2** (p=0.010)' in table
  assert (tmp_path / 'frontier.png').stat().st_size > 10_000
