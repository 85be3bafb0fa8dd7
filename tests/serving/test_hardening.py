"""The server under hostile input (issue 26): body limits before reading, cross-origin and foreign-Host requests,
the bearer token, what /v1/info shows, bounded and finite request values, uploads checked from their header before
decoding, removed outputs, a cancelled batch stopping between decoding steps, half-open connections closed, and
the limits of `ServeOptions` checked before anything loads."""
import dataclasses
import io
import json
import socket
import threading
import time
import tracemalloc

import numpy as np
import pytest
import soundfile
import uvicorn
from fastapi.testclient import TestClient

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import random_pipeline
from magnet_jax.generation.request import Request
from magnet_jax.serving import app as app_module
from magnet_jax.serving import engine
from magnet_jax.serving.app import create_app
from magnet_jax.serving.jobs import Job
from magnet_jax.serving.service import ServeOptions, Service

URL = 'http://localhost'


@pytest.fixture(scope='module')
def pipeline():
  return random_pipeline.build(decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)))


def _client(pipeline, **options) -> TestClient:
  """A client of a service whose worker never starts (no lifespan): requests are checked and queued only."""
  service = Service(dataclasses.replace(pipeline), ServeOptions(**options))
  client = TestClient(create_app(service), base_url=URL)
  client.service = service
  return client


@pytest.fixture(scope='module')
def client(pipeline):
  return _client(pipeline, max_upload_mb=0.05, checkpoint='/srv/models/secret-folder')


def _wav(audio: np.ndarray, rate: int) -> bytes:
  out = io.BytesIO()
  soundfile.write(out, audio.T, rate, subtype='PCM_16', format='WAV')
  return out.getvalue()


def _upload(client, request: dict, data: bytes, **kwargs):
  return client.post('/v1/generations/upload', data={'request': json.dumps(request)},
                     files={'audio': ('a.wav', data, 'audio/wav')}, **kwargs)


def test_bodies_over_the_limit_are_refused_before_they_are_read(client):
  depth = client.service.scheduler.depth
  big = json.dumps({'prompts': ['a' * (2 ** 20)]})
  answer = client.post('/v1/generations', content=big, headers={'Content-Type': 'application/json'})
  assert answer.status_code == 413
  assert answer.json()['error'] == f'the request body is {len(big)} bytes, at most 1048576 bytes (1 MiB) here'
  chunks = (b'x' * 65536 for _ in range(64))  # no Content-Length: counted as it streams (see the real server below)
  answer = client.post('/v1/generations', content=chunks, headers={'Content-Type': 'application/json'})
  assert answer.status_code == 413 and 'the request body is more than' in answer.json()['error']
  # An upload over its limit (0.05 MiB + 1 MiB of form overhead) never reaches the upload's parser.
  upload = _upload(client, {'prompts': ['a'], 'mode': 'continuation'}, b'\0' * (2 * 2 ** 20))
  assert upload.status_code == 413 and 'at most 1101004 bytes' in upload.json()['error']
  assert client.service.scheduler.depth == depth


def test_cross_origin_requests_and_foreign_hosts_are_refused(client, pipeline):
  depth = client.service.scheduler.depth
  wav = _wav(np.zeros((1, 800)), pipeline.sample_rate)
  request = {'prompts': ['a'], 'mode': 'continuation', 'duration': 0.6}
  # A form on another site posts multipart without a preflight; the browser marks it with its Origin.
  evil = _upload(client, request, wav, headers={'Origin': 'http://evil.example'})
  assert evil.status_code == 403 and 'cross-origin request' in evil.json()['error']
  assert client.post('/v1/generations', json={'prompts': ['a']}, headers={'Origin': 'null'}).status_code == 403
  assert client.service.scheduler.depth == depth
  # DNS rebinding: the attacker's name resolves to 127.0.0.1, the Host header still carries it.
  rebound = client.get('/v1/info', headers={'Host': 'evil.example:8000'})
  assert rebound.status_code == 403 and 'evil.example' in rebound.json()['error']
  for host in ('127.0.0.1:8000', '[::1]:8000', 'localhost', socket.gethostname()):
    assert client.get('/v1/health', headers={'Host': host}).status_code == 200, host
  same = _upload(client, request, wav, headers={'Origin': URL})
  assert same.status_code == 202, same.text
  allowed = _client(pipeline, allow_origins=('http://studio.example',), allow_hosts=('studio.example',))
  assert allowed.get('/v1/health', headers={'Origin': 'http://studio.example',
                                            'Host': 'studio.example'}).status_code == 200


def test_info_names_the_checkpoint_folder_only_and_the_token(client, pipeline):
  assert client.get('/v1/info').json()['checkpoint'] == 'secret-folder'
  guarded = _client(pipeline, token='s3cret', checkpoint='/srv/models/secret-folder')
  denied = guarded.get('/v1/info')
  assert denied.status_code == 401 and denied.headers['WWW-Authenticate'] == 'Bearer'
  assert guarded.post('/v1/generations', json={'prompts': ['a']}).status_code == 401
  assert guarded.get('/v1/info', headers={'Authorization': 'Bearer wrong'}).status_code == 401
  assert guarded.get('/v1/health').status_code == 200 and guarded.get('/').status_code == 200
  info = guarded.get('/v1/info', headers={'Authorization': 'Bearer s3cret'})
  assert info.status_code == 200 and info.json()['checkpoint'] == '/srv/models/secret-folder'
  page = guarded.get('/?token=s3cret')  # the page keeps the token in a same-site cookie for its own calls
  assert 'SameSite=Strict' in page.headers['set-cookie'] and 'HttpOnly' in page.headers['set-cookie']
  assert guarded.get('/v1/info').status_code == 200


@pytest.mark.parametrize('body, message', [
    ('{"prompts": ["a"], "deadline_s": 1e999}', 'deadline_s: Input should be a finite number'),
    ('{"prompts": ["a"], "deadline_s": 1e9}', 'deadline_s: Input should be less than or equal to 604800'),
    ('{"prompts": ["a"], "duration": NaN}', 'duration: Input should be a finite number'),
    ('{"prompts": ["a", "b"], "seed": 2147483647}', 'seed: 2147483647 + 2 prompts passes the largest seed'),
    ('{"prompts": ["\\ud800 piano"]}', 'prompts.0: not valid Unicode (a lone surrogate at character 0)'),
    ('{"prompts": ["' + 'word ' * 20000 + '"]}', 'prompts.0: 100000 characters, at most 1024 (64 tokens)'),
    ('{"prompts": ["' + 'a ' * 400 + '"]}', 'prompts.0: at least 256 tokens, at most 64'),
    ('{"prompts": ["a"], "duration": 1e308}', 'duration must be > 0 seconds and at most 30 s, got 1e+308'),
    ('{"prompts": ["a"], "mode": "loop", "duration": 0.06}', 'a loop needs at least 0.18 s'),
])
def test_bad_values_are_422_before_queuing(client, body, message):
  start, depth = time.perf_counter(), client.service.scheduler.depth
  answer = client.post('/v1/generations', content=body.encode('utf-8', 'surrogatepass'),
                       headers={'Content-Type': 'application/json'})
  assert answer.status_code == 422 and message in answer.json()['error'], answer.text
  assert time.perf_counter() - start < 10 and client.service.scheduler.depth == depth


def test_uploads_are_checked_from_their_header_before_decoding(client, pipeline):
  rate = pipeline.sample_rate
  # 40 KB declaring 1 Hz: 20000 s, refused from the header (decoding and resampling it asked for 128 MiB; 80 KB
  # of 32 kHz audio declaring 1 Hz asked for 2.4 GiB).
  wav = _wav(np.zeros((1, 20000)), 1000)
  one_hz = bytearray(wav)
  one_hz[24:28] = (1).to_bytes(4, 'little')  # the WAV header's sample rate
  tracemalloc.start()
  long = _upload(_client(pipeline, max_upload_mb=0.05, max_duration=10.0),
                 {'prompts': ['a'], 'mode': 'continuation', 'duration': 0.6}, wav)
  slow = _upload(client, {'prompts': ['a'], 'mode': 'continuation', 'duration': 0.6}, bytes(one_hz))
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  assert long.status_code == 422 and 'the upload is 20.00 s, at most 10 s' in long.json()['error']
  assert slow.status_code == 422 and 'declares 1 Hz' in slow.json()['error'] and peak < 20 * 2 ** 20
  # Short multi-channel audio is read as the file says ([N, C]), never guessed from its shape.
  bad = lambda message, status=422: AssertionError(message)  # noqa: E731 (the service's error factory)
  audio = client.service._audio(_wav(np.ones((8, 5)) * 0.25, rate), bad)
  assert audio.shape == (1, 5)  # 5 frames, mixed down from 8 channels
  many = _upload(client, {'prompts': ['a'], 'mode': 'continuation', 'duration': 0.6},
                 _wav(np.zeros((20, 10)), rate))
  assert many.status_code == 422 and 'the upload has 20 channels, at most 8' in many.json()['error']
  short_loop = _upload(client, {'prompts': ['a'], 'mode': 'loop'}, _wav(np.zeros((1, 160)), rate))
  assert short_loop.status_code == 422 and 'a loop needs at least 0.18 s' in short_loop.json()['error']


def test_a_removed_output_is_410(client):
  job = Job({}, [engine.Work(Request('a', 0, duration=0.36), DecodingConfig(), 3)])
  job.output_done(0, '/nonexistent/0.wav', {})
  client.service.jobs.add(job)
  answer = client.get(f'/v1/generations/{job.id}/audio/0')
  assert answer.status_code == 410 and 'was removed' in answer.json()['error']


def test_options_are_bounded_before_anything_loads():
  for options, message in [({'port': 99999}, '--port must be an integer in [1, 65535], got 99999'),
                           ({'max_duration': -5.0}, '--max-duration must be a number in [0.01, 86400]'),
                           ({'max_prompt_tokens': 0}, '--max-prompt-tokens must be an integer in [1, 4096]'),
                           ({'drain': float('inf')}, '--drain must be a number'),
                           ({'token': ' '}, '--token must not be empty')]:
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(']', r'\]')):
      ServeOptions(**options)


def test_a_cancelled_batch_stops_at_the_next_decoding_step(pipeline, monkeypatch):
  steps = []
  generate = engine.generate

  def counted(*args, stop, **kwargs):
    return generate(*args, stop=lambda: steps.append(1) or stop(), **kwargs)
  monkeypatch.setattr(engine, 'generate', counted)
  service = Service(dataclasses.replace(pipeline), ServeOptions(max_wait=0.0))
  with TestClient(create_app(service), base_url=URL) as client:
    created = client.post('/v1/generations', json={'prompts': ['a'], 'duration': 0.36,
                                                    'decoding': {'decoding_steps': [400, 1, 1, 1]}})
    job_id = created.json()['id']
    end = time.monotonic() + 300
    while not steps:  # compiled, and decoding
      assert time.monotonic() < end
      time.sleep(0.01)
    assert client.delete(f'/v1/generations/{job_id}').json()['state'] == 'cancelled'
    at_cancel = len(steps)
    while service.scheduler._running:
      assert time.monotonic() < end
      time.sleep(0.01)
    assert len(steps) <= at_cancel + 2 < 403  # the window's 403 steps did not all run
    assert client.get(f'/v1/generations/{job_id}').json()['state'] == 'cancelled'


def test_half_open_connections_are_closed_and_health_answers(pipeline):
  options = ServeOptions(port=_free_port(), header_timeout=0.5, max_connections=64)
  service = Service(dataclasses.replace(pipeline), options)
  server = uvicorn.Server(app_module.uvicorn_config(create_app(service), options))
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  try:
    while not server.started:
      time.sleep(0.05)
    idle = [socket.create_connection(('127.0.0.1', options.port)) for _ in range(40)]
    partial = socket.create_connection(('127.0.0.1', options.port))
    partial.sendall(b'GET /v1/health HTTP/1.1\r\nHost: localhost\r\n')  # headers never finished
    time.sleep(1.5)
    for sock in [*idle, partial]:
      sock.settimeout(5)
      assert sock.recv(1) == b''  # closed by the server
      sock.close()
    with socket.create_connection(('127.0.0.1', options.port)) as sock:
      sock.sendall(b'GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
      assert sock.recv(100).startswith(b'HTTP/1.1 200')
    # A body streamed without Content-Length is cut off once past the limit: 413 long before 64 MiB were sent.
    with socket.create_connection(('127.0.0.1', options.port)) as sock:
      sock.sendall(b'POST /v1/generations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n'
                   b'Transfer-Encoding: chunked\r\n\r\n')
      sent, chunk = 0, b'10000\r\n' + b'x' * 65536 + b'\r\n'
      sock.settimeout(0.05)
      answer = b''
      while sent < 64 * 2 ** 20 and not answer:
        try:
          sock.sendall(chunk)
          sent += 65536
          answer = sock.recv(200)
        except TimeoutError:
          continue
        except OSError:  # the server closed the connection after answering
          break
      sock.settimeout(5)
      answer = answer or sock.recv(200)
      assert answer.startswith(b'HTTP/1.1 413') and sent < 4 * 2 ** 20, (answer, sent)
  finally:
    server.should_exit = True
    thread.join(30)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]
