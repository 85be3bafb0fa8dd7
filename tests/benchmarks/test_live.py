"""`benchmarks/live.py --predict`: the live floors follow from the ahead-of-time plan's window programs (a planned
chip keeps the plan's own floor; another chip takes the program's FLOPs and bytes over its peaks)."""

from benchmarks import live as live_benchmark

CHIPS = [{'name': 'fast', 'peak_flops': 1e15, 'hbm_bandwidth': 1e12},  # compute-bound for the program below
         {'name': 'narrow', 'peak_flops': 1e15, 'hbm_bandwidth': 1e10}]  # memory-bound
PROGRAM = {'program': 'decode', 'model': 'small-10s', 'chip': 'fast', 'batch': 1, 'fits': True, 'frames': 500,
           'hardware_flops': 2e14, 'bytes_floor': 2e10, 'step_s': 0.25}


def test_floors_first_audio_and_realtime_factor():
  aot = {'chips': CHIPS, 'rows': [PROGRAM, {**PROGRAM, 'batch': 16, 'step_s': 9.0},
                                  {**PROGRAM, 'program': 'train', 'chip': 'narrow'}]}
  rows = {(r['chip'], r['overlap_s']): r for r in live_benchmark.predict(aot)}
  assert len(rows) == 4  # one batch-1 window program x two chips x two overlaps
  planned, scaled = rows[('fast', 5.0)], rows[('narrow', 5.0)]
  assert (planned['first_audio_floor_s'], planned['source']) == (0.25, 'planned')  # the plan's own floor
  assert (planned['chunk_s'], planned['realtime_factor_ceiling'], planned['break_even_efficiency']) == (5.0, 20, 0.05)
  assert (scaled['first_audio_floor_s'], scaled['source']) == (2.0, 'scaled from fast')  # 2e10 bytes / 1e10 B/s
  assert scaled['realtime_factor_ceiling'] == 2.5
  assert rows[('fast', 2.5)]['chunk_s'] == 7.5 and rows[('fast', 2.5)]['realtime_factor_ceiling'] == 30
