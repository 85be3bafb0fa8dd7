"""The server's creative controls and its housekeeping, on the tiny exported pipeline (0.6 s window, 10 decoding
steps a window): negative prompts, prompt schedules, tempo loops and overlap map onto the library's `Request` (the
served file is the library call's) and are bounded before queuing; uploads longer than two windows; decoding
steps as progress, over windows, passes and best-of chunks; readable output names, one log line per request, a
temporary output folder gone at shutdown; 503 with an estimate while warming up."""
import io
import json
import os
import re
import time

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from magnet_jax.generation import request as request_lib
from magnet_jax.generation.request import Request
from magnet_jax.serving import engine
from magnet_jax.serving.app import create_app
from magnet_jax.serving.service import DEFAULT_MAX_DURATION, ServeOptions, Service
from tests.serving.test_app import _finished as finished

SECONDS = 1.5  # 75 frames: three 0.6 s windows


@pytest.fixture(scope='module')
def pipeline(tiny_pipeline_folder):
  from magnet_jax.generation import pretrained
  return pretrained.load(tiny_pipeline_folder)


@pytest.fixture(scope='module')
def client(pipeline, tmp_path_factory):
  lines = []
  service = Service(pipeline, ServeOptions(max_batch=1, max_wait=0.0), log=lines.append)
  with TestClient(create_app(service), base_url='http://localhost') as client:
    client.service, client.lines = service, lines
    yield client


def _finished(client, created) -> dict:
  status = finished(client, created)
  assert status['state'] == 'done', status
  return status


def _audio(client, output) -> np.ndarray:
  return soundfile.read(io.BytesIO(client.get(output['audio']).content), dtype='float32', always_2d=True)[0].T


def test_negative_schedule_and_overlap_are_the_library_request(client, pipeline):
  body = {'prompts': ['calm piano'], 'seed': 3, 'duration': SECONDS, 'negative': 'noisy static',
          'schedule': ['0.7:fast drums'], 'overlap': 0.2}
  status = _finished(client, client.post('/v1/generations', json=body))
  [output] = status['outputs']
  reference = Request(((0.0, 'calm piano'), (0.7, 'fast drums')), 3, duration=SECONDS, negative='noisy static',
                      overlap=0.2)
  expected = np.concatenate(list(request_lib.generate(pipeline, [reference], pipeline.decoding)), axis=-1)[0]
  np.testing.assert_allclose(_audio(client, output), expected, atol=2 ** -23)  # 24-bit WAV
  record = output['sidecar']
  assert record['prompt'] == '0:calm piano | 0.7:fast drums' and record['schedule'] == [[0, 'calm piano'],
                                                                                        [0.7, 'fast drums']]
  assert (record['negative_prompt'], record['overlap_s']) == ('noisy static', 0.2)
  # Readable names (the command line's), in a folder per job, and one log line for the request.
  assert output['name'] == '0-calm-piano-0-7-fast-drums_3.wav'
  assert os.path.isfile(os.path.join(client.service.out, status['id'], output['name']))
  [line] = [line for line in client.lines if status['id'] in line]
  assert re.fullmatch(rf'job {status["id"]}: text, 1 prompt\(s\), 1\.50 s of audio each, [\d.]+ s, done', line)


def test_a_tempo_loop_has_its_bars(client, pipeline):
  body = {'prompts': ['funk drums'], 'mode': 'loop', 'tempo': {'bpm': 200, 'bars': 1}}
  [output] = _finished(client, client.post('/v1/generations', json=body))['outputs']
  assert _audio(client, output).shape[-1] == 4 * 60 * pipeline.sample_rate // 200  # 1.2 s exactly
  assert output['sidecar']['tempo_loop'] == {'bpm': 200, 'bars': 1, 'beats_per_bar': 4}


@pytest.mark.parametrize('fields, message', [
    ({'schedule': ['soon: drums']}, 'schedule.0: each entry is SECONDS:TEXT'),
    ({'schedule': ['2:a', '1:b']}, 'schedule: a prompt schedule must start at 0 s and its times increase strictly'),
    ({'schedule': ['1:  ']}, 'empty'),
    ({'schedule': ['1:' + 'word ' * 80]}, 'schedule.0: 82 tokens, at most 64'),
    ({'schedule': [f'{i + 1}:a' for i in range(33)]}, 'schedule: List should have at most 32 items'),
    ({'negative': '  '}, 'negative: empty prompt'),
    ({'mode': 'loop', 'tempo': {'bpm': 10, 'bars': 8}}, '8 bars at 10 bpm make a 192 s loop, at most 30 s'),
    ({'mode': 'loop', 'tempo': {'bpm': 0, 'bars': 1}}, 'tempo.bpm: Input should be greater than 0'),
    ({'mode': 'loop', 'tempo': {'bpm': 120, 'bars': 0}}, 'tempo.bars: Input should be greater than or equal to 1'),
    ({'tempo': {'bpm': 120, 'bars': 1}}, 'a tempo (bpm and bars) makes a generated loop'),
    ({'duration': SECONDS, 'overlap': 0.6}, 'overlap must be shorter than the window (0.6 s here), got 0.6 s'),
    ({'overlap': -1}, 'overlap: Input should be greater than or equal to 0'),
])
def test_bad_controls_are_422_before_queuing(client, fields, message):
  depth = client.service.scheduler.depth
  answer = client.post('/v1/generations', json={'prompts': ['a'], **fields})
  assert answer.status_code == 422 and message in answer.json()['error'], answer.text
  assert client.service.scheduler.depth == depth


def test_an_upload_longer_than_two_windows_is_infilled(client, pipeline):
  assert client.get('/v1/info').json()['max_duration'] == DEFAULT_MAX_DURATION
  rate = pipeline.sample_rate
  take = (0.3 * np.sin(np.arange(int(SECONDS * rate)) * 0.05))[None].astype(np.float32)
  wav = io.BytesIO()
  soundfile.write(wav, take.T, rate, subtype='FLOAT', format='WAV')
  status = _finished(client, client.post(
      '/v1/generations/upload', data={'request': json.dumps({'prompts': ['calm piano'], 'mode': 'infill',
                                                              'infill': [0.2, 1.3]})},
      files={'audio': ('take.wav', wav.getvalue(), 'audio/wav')}))
  served = _audio(client, status['outputs'][0])
  assert served.shape == take.shape and np.abs(served[:, :100] - take[:, :100]).max() < 1e-6  # the original kept


@pytest.mark.parametrize('fields, passes', [({'best_of': 2}, 2), ({'mode': 'loop'}, 2)])
def test_progress_counts_every_decoding_step(pipeline, fields, passes):
  """Best-of 2 in chunks of one candidate (two calls) and a generated loop (its loop and seam passes): one count
  from 1 to the whole, whose end is known from the first pass on (to within the seam's own length)."""
  best = fields.get('best_of', 1)
  work = engine.Work(Request('a', duration=SECONDS, mode=fields.get('mode', 'text')), pipeline.decoding, 1, best)
  seen = []
  engine.generate(pipeline, [work], on_progress=lambda done, total: seen.append((done, total)), chunk=1)
  done = [d for d, _ in seen]
  assert done == list(range(1, len(seen) + 1)) and seen[-1][0] == seen[-1][1]
  assert len({total for _, total in seen}) <= passes and seen[0][1] >= pipeline.decoding.num_steps * passes


def test_progress_streams_steps_and_the_temporary_folder_goes_at_shutdown(pipeline):
  service = Service(pipeline, ServeOptions(max_batch=1, max_wait=0.0), log=lambda line: None)
  with TestClient(create_app(service), base_url='http://localhost') as client:
    status = _finished(client, client.post('/v1/generations', json={'prompts': ['a'], 'duration': SECONDS}))
    assert status['progress'] == {'done': 41, 'total': 41}  # 4 windows (half-window overlaps) x 10 steps, a file
    assert os.path.isdir(service.out)
  assert not os.path.exists(service.out)


def test_503_with_an_estimate_while_warming_up(pipeline, tmp_path):
  service = Service(pipeline, ServeOptions(max_batch=1, max_wait=0.0, warmup=(SECONDS,), out=str(tmp_path)),
                    log=lambda line: None)
  with TestClient(create_app(service), base_url='http://localhost') as client:
    thread = service.start_warm_up()
    health = client.get('/v1/health')
    refused = client.post('/v1/generations', json={'prompts': ['a']})
    for answer in (health, refused):
      assert answer.status_code == 503 and int(answer.headers['Retry-After']) >= 1, answer.text
      assert answer.json()['error'].startswith('warming up')
    assert health.json()['status'] == 'warming up' and service.scheduler.depth == 0
    thread.join(300)
    assert client.get('/v1/health').json() == {'status': 'ok', 'queued': 0}
    service.warming = {'total': 3, 'seconds': [4.0], 'started': time.monotonic()}  # one of three took 4 s
    estimate = client.get('/v1/health')
    assert estimate.json()['error'] == 'warming up, about 8 s left (1 of 3 programs compiled)'
    assert estimate.headers['Retry-After'] == '8'
    service.warming = None
  assert os.path.isdir(tmp_path)  # --out is the user's: kept

