"""The API under random and boundary values for every request field (seeded, bounded in count and time,
in-process: nothing leaves this process): no request gets a 5xx, every refusal is one line of JSON, and the server
stays alive (its health check answers). A second test sends each numeric field's out-of-range values one at a time
and wants a 422 before anything is queued."""
import dataclasses
import io
import json
import math
import random
import time
import typing

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import random_pipeline
from magnet_jax.serving.app import create_app
from magnet_jax.serving.service import ServeOptions, Service

REQUESTS, SECONDS = 200, 60  # whichever ends first
INTS = [0, 1, -1, 2, 3, 7, 64, 2 ** 31 - 1, 2 ** 31, -2 ** 31, 2 ** 63, 10 ** 30]
FLOATS = [0.0, -0.0, 1e-308, 5e-324, 0.5, 1.0, -1.0, 3.4e38, 3.5e38, 1e308, -1e308, math.inf, -math.inf, math.nan]
STRINGS = ['', ' ', 'a', 'calm piano', '\ud800', '\x00', 'é' * 300, 'x' * 5000, '../../etc/passwd', '{"a": 1}']
OTHER = [None, True, False, [], {}, [1, 2], 'text', 1.5]


@pytest.fixture(scope='module')
def client():
  pipeline = random_pipeline.build(decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)))
  service = Service(pipeline, ServeOptions(max_queue=16, max_upload_mb=0.2))
  client = TestClient(create_app(service), base_url='http://localhost')  # the worker never starts: checks only
  client.service = service
  return client


def _scalar(rng: random.Random):
  return rng.choice([rng.choice(INTS), rng.choice(FLOATS), rng.choice(STRINGS), rng.choice(OTHER),
                     rng.uniform(-1e3, 1e3), rng.randint(-10, 10 ** 6)])


def _value(rng: random.Random, annotation):
  """A value of roughly the field's type (often a boundary), or anything at all."""
  if rng.random() < 0.2:
    return _scalar(rng)
  if typing.get_origin(annotation) is tuple or annotation is list:
    return [rng.choice(INTS + [rng.randint(1, 40)]) for _ in range(rng.choice([0, 1, 3, 4, 4, 4, 5, 100]))]
  if annotation is float:
    return rng.choice(FLOATS + [rng.uniform(0, 20)])
  if annotation is int:
    return rng.choice(INTS + [rng.randint(0, 40)])
  if annotation is bool:
    return rng.choice([True, False, 0, 1])
  return rng.choice(STRINGS + ['max', 'prod', 'nonoverlap', 'stride1'])


def _request(rng: random.Random) -> dict:
  request = {}
  if rng.random() < 0.95:
    request['prompts'] = rng.choice([[rng.choice(STRINGS) for _ in range(rng.choice([0, 1, 2, 9]))],
                                     ['calm piano'], _scalar(rng)])
  choices = {'duration': lambda: rng.choice(FLOATS + [rng.uniform(0, 1), 0.36]),
             'seed': lambda: rng.choice(INTS), 'preset': lambda: rng.choice(STRINGS + ['balanced', 'fast']),
             'mode': lambda: rng.choice(['text', 'continuation', 'infill', 'outpaint', 'loop', 'remix']),
             'infill': lambda: [rng.choice(FLOATS) for _ in range(rng.choice([0, 2, 2, 3]))],
             'format': lambda: rng.choice(['wav', 'flac', 'mp3', '']),
             'deadline_s': lambda: rng.choice(FLOATS + [rng.uniform(0, 1000)]),
             'decoding': lambda: {f.name: _value(rng, f.type) for f in dataclasses.fields(DecodingConfig)
                                  if rng.random() < 0.3},
             'unknown_field': lambda: 1}
  for name, make in choices.items():
    if rng.random() < 0.4:
      request[name] = make() if rng.random() < 0.9 else _scalar(rng)
  return request


def _audio(rng: random.Random) -> bytes:
  """A WAV with random rate, channels and length, or one with a damaged header, or noise."""
  out = io.BytesIO()
  channels, frames = rng.choice([1, 2, 8, 20]), rng.choice([1, 10, 100, 2000])
  soundfile.write(out, np.zeros((frames, channels), np.float32), rng.choice([1000, 1600, 44100]), format='WAV')
  data = bytearray(out.getvalue())
  if rng.random() < 0.5:
    at = rng.choice([22, 24, 28, 32, 40])  # channels, rate, byte rate, block align, data size
    data[at:at + 4] = rng.choice([0, 1, 2 ** 31 - 1, 2 ** 32 - 1, rng.randrange(2 ** 32)]).to_bytes(4, 'little')
  return bytes(data) if rng.random() < 0.9 else bytes(rng.randrange(256) for _ in range(100))


def _check(answer) -> None:
  assert answer.status_code < 500, (answer.status_code, answer.text[:500])
  if answer.status_code >= 400:
    assert list(answer.json()) == ['error'] and '\n' not in answer.json()['error'], answer.text[:500]


def test_random_requests_never_get_a_5xx(client):
  rng = random.Random(26)
  start, sent, accepted = time.monotonic(), 0, 0
  while sent < REQUESTS and time.monotonic() - start < SECONDS:
    request = _request(rng)
    body = json.dumps(request, allow_nan=True).encode('utf-8', 'surrogatepass')
    kind = rng.random()
    if kind < 0.6:
      answer = client.post('/v1/generations', content=body, headers={'Content-Type': 'application/json'})
    elif kind < 0.9:
      answer = client.post('/v1/generations/upload', data={'request': body.decode('utf-8', 'surrogatepass')},
                           files={'audio': ('a.wav', _audio(rng), 'audio/wav')})
    else:
      job = rng.choice(['nope', '../../etc', 'a' * 300, '%00'])
      answer = rng.choice([client.get, client.delete])(f'/v1/generations/{job}')
    _check(answer)
    if answer.status_code == 202:  # keep the queue from filling: cancel what was accepted
      accepted += 1
      _check(client.delete(f'/v1/generations/{answer.json()["id"]}'))
    sent += 1
  assert sent >= 50 and client.get('/v1/health').json()['status'] == 'ok'


# Out-of-range values, one field at a time. The decoding fields' ranges come from DecodingConfig's field metadata
# (the "surface" change, issue 24): these cases pass once those bounds exist.
OUT_OF_RANGE = [
    ('decoding', {'decoding_steps': [2 ** 31, 1, 1, 1]}),
    ('decoding', {'decoding_steps': [100000, 1, 1, 1]}),
    ('decoding', {'decoding_steps': [0, 1, 1, 1]}),
    ('decoding', {'temp': 1e308}),
    ('decoding', {'max_cfg_coef': 1e308}),
    ('decoding', {'min_cfg_coef': -1e308}),
    ('decoding', {'top_p': 2.0}),
    ('decoding', {'top_k': -1}),
    ('decoding', {'rescorer_cfg_coef': 1e308}),
    ('duration', 1e308), ('duration', 0.0), ('duration', -1.0),
    ('seed', -1), ('seed', 2 ** 31), ('seed', 2 ** 63),
    ('deadline_s', 0.0), ('deadline_s', 1e308),
]


@pytest.mark.parametrize('field, value', OUT_OF_RANGE)
def test_every_numeric_field_is_bounded_before_queuing(client, field, value):
  depth = client.service.scheduler.depth
  answer = client.post('/v1/generations', json={'prompts': ['calm piano'], 'duration': 0.36, field: value})
  assert answer.status_code == 422, answer.text
  assert client.service.scheduler.depth == depth
