"""Load test of `magnet-jax serve`: N concurrent clients on localhost against the same requests sent one at a time.

  python benchmarks/serve_load.py [--clients 32] [--requests 64] [--duration 5] [--max-batch 8] \
      [--out benchmarks/results/serve_load-cpu-2core.json]

Starts the server (the embedded default model unless --checkpoint) as a subprocess on 127.0.0.1, compiles its
batch buckets at start-up (--warmup), then runs two phases over the same request list (prompt i % len(PROMPTS),
seed i): `concurrent` (--clients tasks, each sending its next request when the previous one is answered) and
`serial` (one request at a time). Each request is POSTed, followed on its server-sent events until it ends and its
audio fetched; it counts as answered once, with the state it ended in. Reports seconds of audio per second of wall
time, p50 / p99 latency (submission -> audio downloaded) and the server's batch-size histogram (Prometheus), prints
a Markdown table and writes JSON (atomically). Bounded: at most --requests per phase, each phase stops at --budget
seconds (requests not answered by then are reported as such).
"""
import argparse
import asyncio
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

from magnet_jax.io import params as params_io

PROMPTS = ('fast drum groove with bass', 'slow solo piano in a minor', 'ambient synth pad with soft rain',
           'jazz trio with brushed drums', 'bright acoustic guitar strumming', 'dark techno with heavy kick',
           'calm flute melody over strings', 'funky bass line and clapping')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


async def _one(client: httpx.AsyncClient, index: int, duration: float) -> dict:
  start = time.perf_counter()
  answer = await client.post('/v1/generations', json={'prompts': [PROMPTS[index % len(PROMPTS)]], 'seed': index,
                                                      'duration': duration})
  if answer.status_code != 202:
    return {'index': index, 'state': f'http {answer.status_code}', 'latency_s': time.perf_counter() - start}
  created, status = answer.json(), None
  async with client.stream('GET', created['events']) as events:
    async for line in events.aiter_lines():
      if line.startswith('data: '):
        status = json.loads(line[6:])
  audio_s = 0.0
  if status['state'] == 'done':
    audio = await client.get(status['outputs'][0]['audio'])
    audio.raise_for_status()
    audio_s = status['outputs'][0]['sidecar']['audio_s']
  return {'index': index, 'id': created['id'], 'state': status['state'], 'audio_s': audio_s,
          'batch_size': status['batch_sizes'][-1] if status['batch_sizes'] else 0,
          'latency_s': time.perf_counter() - start}


async def _phase(url: str, clients: int, count: int, duration: float, budget: float) -> dict:
  todo = list(range(count))
  results: list[dict] = []

  async def client_loop(client):
    while todo:
      results.append(await _one(client, todo.pop(0), duration))

  start = time.perf_counter()
  async with httpx.AsyncClient(base_url=url, timeout=budget) as client:
    tasks = [asyncio.create_task(client_loop(client)) for _ in range(clients)]
    _, pending = await asyncio.wait(tasks, timeout=budget)
    for task in pending:
      task.cancel()
  wall = time.perf_counter() - start
  answered = [r['index'] for r in results]
  latencies = np.array([r['latency_s'] for r in results if r['state'] == 'done'])
  done = [r for r in results if r['state'] == 'done']
  return {'clients': clients, 'requests': count, 'answered': len(results),
          'answered_once': sorted(answered) == sorted(set(answered)) and len({r.get('id') for r in results}) == len(
              results), 'states': {s: sum(r['state'] == s for r in results) for s in {r['state'] for r in results}},
          'wall_s': wall, 'audio_s': sum(r['audio_s'] for r in done),
          'audio_s_per_wall_s': sum(r['audio_s'] for r in done) / wall,
          'latency_p50_s': float(np.percentile(latencies, 50)) if len(latencies) else None,
          'latency_p99_s': float(np.percentile(latencies, 99)) if len(latencies) else None,
          'batch_sizes': {str(k): int(v) for k, v in zip(*np.unique([r['batch_size'] for r in done],
                                                                    return_counts=True), strict=True)}}


def _batch_histogram(url: str) -> dict:
  """The server's magnet_batch_size buckets (cumulative counts by upper bound)."""
  text = httpx.get(f'{url}/metrics').text
  return {le: float(v) for le, v in re.findall(r'magnet_batch_size_bucket\{le="([^"]+)"\} (\S+)', text)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--clients', type=int, default=32)
  parser.add_argument('--requests', type=int, default=64)
  parser.add_argument('--duration', type=float, default=5.0)
  parser.add_argument('--max-batch', type=int, default=8)
  parser.add_argument('--max-wait', type=float, default=0.05)
  parser.add_argument('--checkpoint', default=None)
  parser.add_argument('--budget', type=float, default=1800.0, help='seconds per phase at most')
  parser.add_argument('--out', default=None)
  args = parser.parse_args()
  port = _free_port()
  url = f'http://127.0.0.1:{port}'
  command = [sys.executable, '-c', 'from magnet_jax.apps.main import main; main()', 'serve', '--port', str(port),
             '--max-batch', str(args.max_batch), '--max-wait', str(args.max_wait), '--warmup', str(args.duration),
             '--max-queue', str(max(64, args.requests))]
  if args.checkpoint:
    command += ['--checkpoint', args.checkpoint]
  server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    start = time.perf_counter()
    while True:
      assert server.poll() is None, server.stdout.read()
      try:
        if httpx.get(f'{url}/v1/health').status_code == 200:
          break
      except httpx.TransportError:
        time.sleep(0.5)
    startup = time.perf_counter() - start
    info = httpx.get(f'{url}/v1/info').json()
    print(f'server up in {startup:.0f} s: {info["devices"]}', flush=True)
    concurrent = asyncio.run(_phase(url, args.clients, args.requests, args.duration, args.budget))
    concurrent['server_batch_histogram'] = _batch_histogram(url)
    print(f'concurrent: {concurrent}', flush=True)
    serial = asyncio.run(_phase(url, 1, args.requests, args.duration, args.budget))
    print(f'serial: {serial}', flush=True)
  finally:
    server.terminate()
    log, _ = server.communicate(timeout=600)
  result = {'args': vars(args), 'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                                            'devices': info['devices']},
            'model': info['model'], 'sample_rate': info['sample_rate'], 'startup_s': startup,
            'concurrent': concurrent, 'serial': serial,
            'throughput_ratio': concurrent['audio_s_per_wall_s'] / max(serial['audio_s_per_wall_s'], 1e-9),
            'server_log_tail': log.splitlines()[-12:]}
  rows = [('phase', 'clients', 'answered', 'audio s / wall s', 'p50 s', 'p99 s', 'batch sizes')]
  for name, phase in (('concurrent', concurrent), ('serial', serial)):
    rows.append((name, phase['clients'], f'{phase["answered"]}/{phase["requests"]}',
                 f'{phase["audio_s_per_wall_s"]:.2f}', f'{phase["latency_p50_s"]:.1f}', f'{phase["latency_p99_s"]:.1f}',
                 ' '.join(f'{k}x{v}' for k, v in phase['batch_sizes'].items())))
  print('\n'.join('| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows[:1] + [('---',) * 7] + rows[1:]))
  print(f'throughput ratio (concurrent / serial): {result["throughput_ratio"]:.2f}')
  if args.out:
    params_io.save_json(args.out, result)


if __name__ == '__main__':
  main()
