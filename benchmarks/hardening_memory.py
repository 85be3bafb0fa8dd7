"""Peak memory of issue 26's crash / out-of-memory inputs, before (the former code path, run here as it was) and
after (what the server or reader does now), on the tiny random pipeline (1.6 kHz codec) on CPU.

  python benchmarks/hardening_memory.py [--json benchmarks/results/hardening_memory.json]

Prints a table (peak Python-traced allocation, MiB, per case) and writes it as JSON.
"""
import argparse
import dataclasses
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile

import numpy as np
import soundfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fastapi.testclient import TestClient  # noqa: E402

from magnet_jax.decoding import DecodingConfig  # noqa: E402
from magnet_jax.evaluation.metrics import MAX_STATS_DIM, EmbeddingStats  # noqa: E402
from magnet_jax.generation import pipeline as pipeline_module  # noqa: E402
from magnet_jax.generation import random_pipeline  # noqa: E402
from magnet_jax.serving.app import create_app  # noqa: E402
from magnet_jax.serving.service import ServeOptions, Service  # noqa: E402


def _peak(call) -> tuple[float, float, str]:
  """(peak traced MiB, seconds, outcome) of call()."""
  tracemalloc.start()
  start = time.perf_counter()
  try:
    call()
    outcome = 'ran'
  except Exception as e:  # noqa: BLE001 (the outcome is reported)
    outcome = f'{type(e).__name__}: {str(e)[:70]}'
  seconds = time.perf_counter() - start
  peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
  tracemalloc.stop()
  return peak, seconds, outcome


def _rss_mib() -> float:
  with open('/proc/self/status') as f:
    return next(int(line.split()[1]) for line in f if line.startswith('VmRSS')) / 1024


def _programs_rss(pipeline, size: int, count: int = 10) -> None:
  """Prints [RSS growth MiB, seconds, programs kept] of `count` generations with distinct temperatures."""
  pipeline_module.PROGRAM_CACHE = size
  pipeline.generate_tokens(['a'], 0.12, 0, temp=2.0)  # the codec, keys and text encoder compiled once
  start, before = time.perf_counter(), _rss_mib()
  for i in range(count):
    pipeline.generate_tokens(['a'], 0.12, 0, temp=3.0 + i * 1e-6)
  print(json.dumps([_rss_mib() - before, time.perf_counter() - start, len(pipeline._programs)]))


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument('--json', default='benchmarks/results/hardening_memory.json')
  parser.add_argument('--programs', type=int, default=None, help='(internal) measure the compile cache at this size')
  args = parser.parse_args()
  pipeline = random_pipeline.build(decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)))
  if args.programs is not None:
    return _programs_rss(pipeline, args.programs)
  service = Service(dataclasses.replace(pipeline), ServeOptions())
  client = TestClient(create_app(service), base_url='http://localhost')
  rows = []

  # Fault 2: 40 KB of WAV declaring 1 Hz (20000 frames: 20000 s).
  wav = io.BytesIO()
  soundfile.write(wav, np.zeros(20000, np.float32), 1000, subtype='PCM_16', format='WAV')
  one_hz = bytearray(wav.getvalue())
  one_hz[24:28] = (1).to_bytes(4, 'little')
  upload = bytes(one_hz)

  def former_upload():
    audio, rate = soundfile.read(io.BytesIO(upload), dtype='float32', always_2d=True)
    pipeline.prepare_audio(audio.T, rate, 1)
  rows.append(('2: 40 KB WAV declaring 1 Hz', 'before', *_peak(former_upload)))
  rows.append(('2: 40 KB WAV declaring 1 Hz', 'after', *_peak(
      lambda: client.post('/v1/generations/upload', data={'request': '{"prompts": ["a"], "mode": "loop"}'},
                          files={'audio': ('a.wav', upload, 'audio/wav')}).raise_for_status())))

  # Fault 3: a 4 MB prompt (the was 20 MB: 25 s and 1.4 GB).
  prompt = 'word ' * (4 * 2 ** 20 // 5)
  rows.append(('3: 4 MB prompt', 'before', *_peak(lambda: pipeline.text_encoder.tokenize([prompt]))))
  body = json.dumps({'prompts': [prompt]})
  rows.append(('3: 4 MB prompt', 'after', *_peak(
      lambda: client.post('/v1/generations', content=body,
                          headers={'Content-Type': 'application/json'}).raise_for_status())))

  # Fault 6: 10 distinct decoding values, each a compiled program (process RSS growth, MiB), in fresh processes.
  for label, size in (('before', 10 ** 6), ('after', 4)):
    run = subprocess.run([sys.executable, __file__, '--programs', str(size)], capture_output=True, text=True,
                         check=True)
    growth, seconds, kept = json.loads(run.stdout.strip().splitlines()[-1])
    rows.append(('6: 10 decoding values (RSS growth)', label, growth, seconds, f'{kept} programs kept'))

  # Fault 10: a .npz whose sigma inflates to 512 MiB.
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, 'bomb.npz')
    dim = MAX_STATS_DIM + 1
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
      for name, array in {'mu': np.zeros(dim), 'embedder': np.array('vggish/1'), 'count': np.array(10)}.items():
        with archive.open(f'{name}.npy', 'w') as f:
          np.lib.format.write_array(f, array)
      with archive.open('sigma.npy', 'w', force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {'descr': '<f8', 'fortran_order': False, 'shape': (dim, dim)})
        row = bytes(8 * dim)
        for _ in range(dim):
          f.write(row)
    size = os.path.getsize(path) / 2 ** 20

    def former_load():
      with np.load(path) as data:
        data['sigma'].astype(np.float64)
    rows.append((f'10: {size:.1f} MB .npz zip bomb', 'before', *_peak(former_load)))
    rows.append((f'10: {size:.1f} MB .npz zip bomb', 'after', *_peak(lambda: EmbeddingStats.load(path, 'musicnn/1'))))

  print('| case | code | peak MiB | seconds | outcome |\n| --- | --- | ---: | ---: | --- |')
  for case, label, peak, seconds, outcome in rows:
    print(f'| {case} | {label} | {peak:.1f} | {seconds:.2f} | {outcome} |')
  print(f'max RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB')
  os.makedirs(os.path.dirname(args.json), exist_ok=True)
  with open(args.json, 'w') as f:
    json.dump([dict(zip(('case', 'code', 'peak_mib', 'seconds', 'outcome'), row, strict=True)) for row in rows], f,
              indent=1)


if __name__ == '__main__':
  main()
