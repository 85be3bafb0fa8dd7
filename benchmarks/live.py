"""Live generation on the embedded default: time to first audio, real-time factor and underruns against window
length and overlap, and the command as a user runs it (`magnet-jax live ... --out -` with a prompt change on stdin).

  python benchmarks/live.py [--seconds 30] [--windows 2.5,5] [--overlaps 0.25,0.5] [--checkpoint DIR]
                            [--json benchmarks/results/live-cpu-2core.json]

Grid: for each window length (seconds; 5 is the model's window) and overlap (a fraction of the window), one stream
of `--seconds` of audio after a warm-up that compiles the window's program: time to first audio (one window, warm),
the real-time factor (seconds of audio per second of generation after the first window) and underruns (chunks
ready after their play time when playback starts with the first chunk; `generation.live.Timing`).

Command: `magnet-jax live --prompt "fast drum groove" --duration 30 --out -` in a new process with
"15:ambient pad drone" on stdin: when the first audio bytes arrive after the model is loaded and compiled, its own
timing line, and the onset rate and spectral centroid (`audio.stats`) of every chunk, before and after the change.

  python benchmarks/live.py --predict [--aot benchmarks/results/aot-tpu.json] [--json .../live-predicted.json]

Prediction (no model, no run): the released sizes' live floors from the ahead-of-time plan's batch-1 window
programs (`benchmarks/aot_plan.py`): a window's latency floor is max(FLOPs / peak, bytes / HBM bandwidth) of the
compiled window on a chip (the LM's decoding; the codec's decode and the text encoder are not in it); the first
audio comes one window after compilation, and each later window adds a chunk
of W - O seconds, so the real-time factor's ceiling is chunk / floor. Chips the plan did not compile for take the
same program's FLOPs and bytes (the analytic counts do not depend on the chip) over their own peaks (`source`).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

from magnet_jax.audio import stats, wav_stream
from magnet_jax.generation import live, pretrained
from magnet_jax.io.files import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSY, CALM, CHANGE_AT = 'fast drum groove', 'ambient pad drone', 15.0
DEFAULT_JSON = os.path.join(ROOT, 'benchmarks/results/live-cpu-2core.json')
FRAME_RATE = 50  # frames per second of the released models' codec (32 kHz, hop 640)


def grid(pipeline, windows: list[float], overlaps: list[float], preset_names: list[str], seconds: float) -> list[dict]:
  """Rows of windows x overlaps with the default decoding, then one row per preset at the model's window and half
  of it as overlap."""
  rows = []
  pipeline.text_pad_to = live.TEXT_TOKENS
  runs = [(w, f, None) for w in windows for f in overlaps] + [(None, 0.5, p) for p in preset_names]
  for window, fraction, preset in runs:
    seconds_window = window or pipeline.window_frames(pipeline.decoding) / pipeline.frame_rate
    overlap = fraction * seconds_window
    controls = live.Controls(BUSY, preset=preset)
    warm = live.LiveStream(pipeline, controls, window=window, overlap=overlap)
    warm.next_chunk()  # compiles this window length's program (overlaps share it)
    stream = live.LiveStream(pipeline, controls, seed=0, duration=seconds, window=window, overlap=overlap)
    chunks = list(stream)
    timing = stream.timing
    rows.append({'window_s': round(seconds_window, 2), 'overlap_s': round(overlap, 2), 'preset': preset or 'default',
                 'chunk_s': chunks[1].audio.shape[-1] / pipeline.sample_rate,
                 'first_audio_s': round(timing.first_audio, 3),
                 'realtime_factor': round(timing.realtime_factor, 2), 'underruns': timing.underruns,
                 'windows': timing.windows, 'window_compute_s': round(timing.compute / (timing.windows - 1), 3)})
    print(json.dumps(rows[-1]), flush=True)
  return rows


def command(checkpoint: str | None, rate: int) -> dict:
  """The command in a new process, its stdout read as fast as it comes."""
  args = [sys.executable, '-c', 'from magnet_jax.apps.main import main; main()', 'live', '--prompt', BUSY,
          '--duration', '30', '--out', '-', '--seed', '0'] + (['--checkpoint', checkpoint] if checkpoint else [])
  began = time.perf_counter()
  process = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  log: list[tuple[float, str]] = []
  reader = threading.Thread(target=lambda: log.extend((time.perf_counter() - began, line.decode().rstrip())
                                                      for line in process.stderr))
  reader.start()
  process.stdin.write(f'{CHANGE_AT:g}:{CALM}\n'.encode())
  process.stdin.close()
  data, first_bytes = b'', None
  while block := process.stdout.read1(1 << 16):
    if first_bytes is None and len(data) + len(block) > wav_stream.HEADER_BYTES:
      first_bytes = time.perf_counter() - began
    data += block
  process.wait()
  reader.join()
  lines = [line for _, line in log]
  compiled = next(t for t, line in log if line.startswith('compiling'))
  loaded = next(t for t, line in log if line.startswith('loading'))
  first_line = next(line for line in lines if line.startswith('first audio after'))
  compile_s = float(first_line.split('(')[1].split(' s')[0])
  audio = np.frombuffer(data[wav_stream.HEADER_BYTES:], '<i2').astype(np.float32) / 32767
  chunks = []
  for line in lines:
    if ' window ' in line:
      head, text = line.split(': ', 1)
      chunks.append((float(head.split()[0]), text.rsplit(' (', 1)[0]))
  ends = [start for start, _ in chunks[1:]] + [len(audio) / rate]
  per_chunk = [{'start_s': start, 'prompt': text,
                'onset_rate': round(stats.onset_rate(audio[int(start * rate):int(end * rate)], rate), 2),
                'centroid_hz': round(stats.spectral_centroid(audio[int(start * rate):int(end * rate)], rate), 1)}
               for (start, text), end in zip(chunks, ends, strict=True)]
  changed = next(c['start_s'] for c in per_chunk if c['prompt'] == CALM)
  split = int(changed * rate)
  return {'returncode': process.returncode, 'audio_s': round(len(audio) / rate, 3),
          'first_audio_bytes_after_start_s': round(first_bytes, 2),
          'compiling_line_at_s': round(compiled, 2), 'loading_line_at_s': round(loaded, 2),
          'first_audio_after_compile_s': round(first_bytes - compiled - compile_s, 2),
          'first_audio_line': first_line, 'final_line': lines[-1], 'change_heard_from_s': changed,
          'before': {'onset_rate': round(stats.onset_rate(audio[:split], rate), 2),
                     'centroid_hz': round(stats.spectral_centroid(audio[:split], rate), 1)},
          'after': {'onset_rate': round(stats.onset_rate(audio[split:], rate), 2),
                    'centroid_hz': round(stats.spectral_centroid(audio[split:], rate), 1)},
          'chunks': per_chunk}


def predict(aot: dict, overlaps: tuple[float, ...] = (0.5, 0.25)) -> list[dict]:
  """Live floors of every batch-1 window program of the plan on every chip of its table (module docstring)."""
  rows = []
  decoded = [r for r in aot['rows'] if r['program'] == 'decode' and r['batch'] == 1 and r['fits']]
  planned = {(r['model'], r['chip']): r for r in decoded}
  for model in sorted({r['model'] for r in decoded}):
    program = next(r for r in decoded if r['model'] == model)  # its FLOPs and bytes, for the chips not planned
    window_s = program['frames'] / FRAME_RATE
    for chip in aot['chips']:
      own = planned.get((model, chip['name']))
      floor = own['step_s'] if own else max(program['hardware_flops'] / chip['peak_flops'],
                                             program['bytes_floor'] / chip['hbm_bandwidth'])
      for fraction in overlaps:
        chunk = window_s * (1 - fraction)
        rows.append({'model': model, 'chip': chip['name'], 'window_s': round(window_s, 2),
                     'overlap_s': round(window_s * fraction, 2), 'chunk_s': round(chunk, 2),
                     'first_audio_floor_s': round(floor, 5), 'realtime_factor_ceiling': round(chunk / floor, 1),
                     'break_even_efficiency': round(floor / chunk, 4),
                     'source': 'planned' if own else f'scaled from {program["chip"]}'})
  return rows


def print_prediction(rows: list[dict]) -> None:
  print('| model | chip | window s | overlap s | chunk s | first audio floor s | real-time factor ceiling | '
        'keeps up above | source |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for r in rows:
    print(f'| {r["model"]} | {r["chip"]} | {r["window_s"]:g} | {r["overlap_s"]:g} | {r["chunk_s"]:g} | '
          f'{r["first_audio_floor_s"]:.3f} | {r["realtime_factor_ceiling"]:g} | '
          f'{100 * r["break_even_efficiency"]:.1f}% | {r["source"]} |')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--predict', action='store_true', help='the released sizes\' live floors from --aot; no run')
  parser.add_argument('--aot', default=os.path.join(ROOT, 'benchmarks/results/aot-tpu.json'))
  parser.add_argument('--seconds', type=float, default=30.0)
  parser.add_argument('--windows', default='2.5,5')  # 5: the model's window, 5.04 s
  parser.add_argument('--overlaps', default='0.25,0.5')
  parser.add_argument('--presets', default='fast', help='presets measured at the model\'s window, half overlap')
  parser.add_argument('--checkpoint', default=None)
  parser.add_argument('--json', default=DEFAULT_JSON)
  args = parser.parse_args()
  if args.predict:
    with open(args.aot) as f:
      rows = predict(json.load(f))
    print_prediction(rows)
    out = args.json if args.json != DEFAULT_JSON else os.path.join(ROOT, 'benchmarks/results/live-predicted.json')
    results = {'aot': os.path.relpath(args.aot, ROOT), 'note': 'roofline floors of one window, not measurements',
               'rows': rows}
    atomic_write(out, lambda tmp: open(tmp, 'w').write(json.dumps(results, indent=1) + '\n'))
    print(f'wrote {out}')
    return
  conditions = {'cpus': os.cpu_count(), 'load_start': [round(x, 2) for x in os.getloadavg()]}
  pipeline = pretrained.load(args.checkpoint)
  rows = grid(pipeline, [float(w) for w in args.windows.split(',')], [float(o) for o in args.overlaps.split(',')],
              [p for p in args.presets.split(',') if p], args.seconds)
  cli = command(args.checkpoint, pipeline.sample_rate)
  conditions['load_end'] = [round(x, 2) for x in os.getloadavg()]
  print(f'\nlive on {conditions["cpus"]} CPUs, load average {conditions["load_start"]} -> {conditions["load_end"]}')
  print('| window s | overlap s | preset | chunk s | first audio s (warm) | real-time factor | underruns | '
        's per window |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- |')
  for r in rows:
    print(f'| {r["window_s"]:g} | {r["overlap_s"]:g} | {r["preset"]} | {r["chunk_s"]:.2f} | {r["first_audio_s"]:.2f} | '
          f'{r["realtime_factor"]:.2f} | {r["underruns"]} | {r["window_compute_s"]:.2f} |')
  print(f'\ncommand: first audio bytes {cli["first_audio_after_compile_s"]} s after load + compile '
        f'({cli["first_audio_bytes_after_start_s"]} s after start); {cli["final_line"]}')
  print(f'change to "{CALM}" at {CHANGE_AT:g} s, heard from {cli["change_heard_from_s"]} s: onset rate '
        f'{cli["before"]["onset_rate"]} -> {cli["after"]["onset_rate"]} /s, centroid {cli["before"]["centroid_hz"]} '
        f'-> {cli["after"]["centroid_hz"]} Hz')
  results = {'conditions': conditions, 'seconds': args.seconds, 'grid': rows, 'command': cli}
  atomic_write(args.json, lambda tmp: open(tmp, 'w').write(json.dumps(results, indent=1) + '\n'))
  print(f'wrote {args.json}')


if __name__ == '__main__':
  main()
