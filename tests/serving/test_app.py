"""The HTTP API on a tiny random pipeline: outputs are bit for bit the single-prompt pipeline's (and so the
command line's) whatever their batch mates, in every mode; bad input gets a 4xx with a one-line JSON error; a
full queue 429 with Retry-After; cancel; progress events; metrics."""
import dataclasses
import io
import json
import time

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from magnet_jax.audio.files import AtomicAudioFile
from magnet_jax.decoding import DecodingConfig
from magnet_jax.decoding.config import FIELDS, help_text
from magnet_jax.generation import random_pipeline
from magnet_jax.serving.app import create_app
from magnet_jax.serving.service import ServeOptions, Service

PROMPTS = ['calm piano', 'fast drums', 'soft synth']  # equal token counts: one batch
SECONDS = 0.36  # 18 frames at 50 Hz (whole 3-frame spans); the tiny model's window is 0.6 s


@pytest.fixture(scope='module')
def reference():
  """The pipeline as the command line uses it (text padded to multiples of 8)."""
  return random_pipeline.build(decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)))


@pytest.fixture(scope='module')
def client(reference):
  service = Service(dataclasses.replace(reference), ServeOptions(max_batch=4, max_wait=0.5))  # same weights
  with TestClient(create_app(service), base_url='http://localhost') as client:
    client.service = service
    yield client


def _wav(audio: np.ndarray, rate: int) -> bytes:
  out = io.BytesIO()
  soundfile.write(out, audio.T, rate, subtype='PCM_24', format='WAV')
  return out.getvalue()


def _finished(client, created) -> dict:
  assert created.status_code == 202, created.text
  job_id = created.json()['id']
  for _ in range(3000):
    status = client.get(f'/v1/generations/{job_id}').json()
    if status['state'] not in ('queued', 'running'):
      return status
    time.sleep(0.1)
  raise AssertionError(f'job {job_id} did not finish')


def _served(client, status) -> list[np.ndarray]:
  assert status['state'] == 'done', status
  return [soundfile.read(io.BytesIO(client.get(o['audio']).content), dtype='int32')[0] for o in status['outputs']]


def _as_file(tmp_path, audio, rate) -> np.ndarray:
  """The reference audio [C, N] as the command line writes it (AtomicAudioFile, 24-bit WAV), read back."""
  writer = AtomicAudioFile(str(tmp_path / 'ref.wav'), rate, audio.shape[0])
  writer.write(audio)
  writer.finish('wav')
  writer.publish()
  return soundfile.read(tmp_path / 'ref.wav', dtype='int32')[0]


def test_batched_outputs_are_the_single_prompt_outputs(client, reference, tmp_path):
  created = client.post('/v1/generations', json={'prompts': PROMPTS, 'seed': 11, 'duration': SECONDS})
  events = client.get(created.json()['events']).text.strip().split('\n\n')
  states = [json.loads(event.split('data: ', 1)[1])['state'] for event in events]
  assert states[-1] == 'done' and set(states) <= {'queued', 'running', 'done'}
  status = _finished(client, created)
  assert [o['sidecar']['batch_size'] for o in status['outputs']] == [3, 3, 3]
  assert status['progress'] == {'done': 3 * (10 + 1), 'total': 3 * (10 + 1)}  # 10 decoding steps and a file each
  record = status['outputs'][1]['sidecar']
  assert (record['prompt'], record['seed'], record['mode']) == ('fast drums', 12, 'text')
  assert record['decoding']['decoding_steps'] == [4, 2, 2, 2] and record['versions']['jax']
  for i, served in enumerate(_served(client, status)):
    single = reference.generate([PROMPTS[i]], SECONDS, [11 + i])[0]
    np.testing.assert_array_equal(served, _as_file(tmp_path, single, reference.sample_rate))


@pytest.mark.parametrize('mode', ['infill', 'outpaint', 'continuation'])
def test_modes_with_audio_match_the_pipeline(client, reference, tmp_path, mode):
  rate = reference.sample_rate
  upload = 0.3 * np.sin(np.arange(int((SECONDS if mode == 'infill' else 0.2) * rate)) * 0.3)[None]
  request = {'prompts': PROMPTS, 'seed': 5, 'mode': mode}
  if mode == 'infill':
    request['infill'] = [0.1, 0.25]
  else:
    request['duration'] = SECONDS
  status = _finished(client, client.post('/v1/generations/upload', data={'request': json.dumps(request)},
                                         files={'audio': ('a.wav', _wav(upload, rate), 'audio/wav')}))
  upload = soundfile.read(io.BytesIO(_wav(upload, rate)), dtype='float32', always_2d=True)[0].T  # as served: 24 bit
  for i, served in enumerate(_served(client, status)):
    if mode == 'infill':  # outside the span, the output is the upload itself
      single = reference.infill(upload, rate, [PROMPTS[i]], 0.1, 0.25, [5 + i])
    elif mode == 'outpaint':
      single = reference.outpaint(upload, rate, [PROMPTS[i]], 'left', SECONDS, [5 + i])
    else:
      single = reference.generate_continuation(upload, rate, [PROMPTS[i]], SECONDS, [5 + i])
    np.testing.assert_array_equal(served, _as_file(tmp_path, single[0], rate))


@pytest.mark.parametrize('body, status, message', [
    ({'prompts': []}, 422, 'prompts: List should have at least 1 item'),
    ({'prompts': ['a'], 'temperature': 2}, 422, 'temperature: Extra inputs are not permitted'),
    ({'prompts': ['a'], 'decoding': {'topk': 2}}, 422, 'decoding.topk: Extra inputs are not permitted'),
    ({'prompts': ['a'], 'seed': '3'}, 422, 'seed: Input should be a valid integer'),
    ({'prompts': 'a'}, 422, 'prompts: Input should be a valid list'),
    ({'prompts': ['  ']}, 422, 'prompts.0: empty prompt'),
    ({'prompts': ['a'], 'duration': 31}, 422, 'duration must be > 0 seconds and at most 30 s, got 31'),
    ({'prompts': ['a'] * 9}, 422, 'prompts: 9 given, at most 8 per request'),
    ({'prompts': ['word ' * 80]}, 422, 'prompts.0: 82 tokens, at most 64'),
    ({'prompts': ['a'], 'decoding': {'top_k': 1000}}, 422, 'decoding.top_k=1000 exceeds card=32'),
    ({'prompts': ['a'], 'decoding': {'temp': 101}}, 422, 'decoding.temp: Input should be less than or equal to 100'),
    ({'prompts': ['a'], 'decoding': {'decoding_steps': [4, 0]}}, 422,
     'decoding.decoding_steps.1: Input should be greater than or equal to 1'),
    ({'prompts': ['a'], 'mode': 'infill', 'infill': [0, 1]}, 422, 'mode infill needs audio'),
    ({'prompts': ['a'], 'format': 'mp3'}, 422, "format: Input should be 'wav' or 'flac'"),
])
def test_bad_requests_get_a_one_line_error(client, body, status, message):
  answer = client.post('/v1/generations', json=body)
  assert answer.status_code == status and list(answer.json()) == ['error'], answer.text
  assert message in answer.json()['error'] and '\n' not in answer.text


def test_bad_uploads(client):
  request = json.dumps({'prompts': ['a'], 'mode': 'continuation', 'duration': 0.5})
  garbage = client.post('/v1/generations/upload', data={'request': request},
                        files={'audio': ('a.wav', b'not audio at all', 'audio/wav')})
  assert garbage.status_code == 400 and garbage.json() == {'error': 'cannot decode the uploaded audio: '
                                                                    'Format not recognised.'}
  client.service.options.__dict__['max_upload_mb'] = 0.001  # frozen dataclass: a test-only change
  try:
    big = client.post('/v1/generations/upload', data={'request': request},
                      files={'audio': ('a.wav', _wav(np.zeros((1, 4000)), 1600), 'audio/wav')})
  finally:
    client.service.options.__dict__['max_upload_mb'] = 20.0
  assert big.status_code == 413 and 'at most 0.001 MB' in big.json()['error']
  wrong = client.post('/v1/generations/upload', data={'request': '{"prompts": ["a"], "mode": "continuation",'},
                      files={'audio': ('a.wav', b'x', 'audio/wav')})
  assert wrong.status_code == 422 and 'Invalid JSON' in wrong.json()['error']
  assert client.get('/v1/generations/nope').json() == {'error': 'no job nope'}


def test_full_queue_429_then_cancel(client):
  service = Service(client.service.pipeline, ServeOptions(max_queue=2))
  client = TestClient(create_app(service), base_url='http://localhost')  # no lifespan: jobs stay queued
  first = client.post('/v1/generations', json={'prompts': ['a', 'b']})
  assert first.status_code == 202
  full = client.post('/v1/generations', json={'prompts': ['c']})
  assert full.status_code == 429 and int(full.headers['Retry-After']) >= 1
  assert full.json()['error'] == 'the queue is full (2 of 2 outputs waiting)'
  job_id = first.json()['id']
  assert client.delete(f'/v1/generations/{job_id}').json() == {'id': job_id, 'state': 'cancelled'}
  assert service.scheduler.depth == 0
  assert client.delete(f'/v1/generations/{job_id}').status_code == 409
  assert client.post('/v1/generations', json={'prompts': ['c']}).status_code == 202
  assert 'magnet_rejected_total{status="429"} 1.0' in client.get('/metrics').text


def test_metrics_page_and_openapi(client):
  metrics = client.get('/metrics').text
  assert 'magnet_batch_size_count' in metrics and 'magnet_compile_events_total' in metrics
  assert 'magnet_job_seconds_count{state="done"}' in metrics and 'magnet_queue_depth 0.0' in metrics
  page = client.get('/').text
  assert 'id="prompt"' in page and 'http' not in page.replace('http-equiv', '')  # no external assets
  assert client.get('/static/app.js').status_code == 200
  schema = client.get('/openapi.json').json()
  assert '/v1/generations/{job_id}/events' in schema['paths']
  assert schema['components']['schemas']['GenerationRequest']['additionalProperties'] is False
  assert client.get('/v1/health').json() == {'status': 'ok', 'queued': 0}


def test_decoding_schema_is_the_config_metadata(client):
  """Each decoding field's range and help in the API schema are DecodingConfig's metadata."""
  properties = client.get('/openapi.json').json()['components']['schemas']['DecodingOverrides']['properties']
  assert set(properties) == set(FIELDS)
  for name, field in FIELDS.items():
    schema = properties[name]['anyOf'][0]
    assert properties[name]['description'] == help_text(name)
    if field.type is str:
      assert tuple(schema['enum']) == field.metadata['choices'], name
    elif field.type is not bool:
      bounds = schema.get('items', schema)
      assert (bounds['minimum'], bounds['maximum']) == (field.metadata['min'], field.metadata['max']), name
@pytest.mark.parametrize('mode', ['continuation', 'infill'])
def test_served_equals_the_command_line_past_two_windows(tiny_pipeline_folder, tmp_path, mode):
  """A 0.8 s upload on the 0.6 s-window model, continued to 1.6 s (three windows) or infilled over 0.1-0.75 s
  (two windows) with best-of 2, by the server and by the command line's library call: the same files."""
  from magnet_jax.generation import pretrained
  from magnet_jax.generation.prompts import Prompt
  from magnet_jax.generation.sample_files import SampleOptions, sample
  pipeline = pretrained.load(tiny_pipeline_folder)
  rate = pipeline.sample_rate
  upload = (0.3 * np.sin(np.arange(int(0.8 * rate)) * 0.05))[None].astype(np.float32)
  soundfile.write(tmp_path / 'take.wav', upload.T, rate, subtype='FLOAT')
  fields = {'duration': 1.6} if mode == 'continuation' else {'infill': [0.1, 0.75], 'best_of': 2}
  service = Service(pipeline, ServeOptions(max_duration=2.0, max_batch=2, out=str(tmp_path / 'served')))
  with TestClient(create_app(service), base_url='http://localhost') as client:
    status = _finished(client, client.post(
        '/v1/generations/upload', data={'request': json.dumps({'prompts': ['calm piano'], 'seed': 5, 'mode': mode,
                                                                **fields})},
        files={'audio': ('take.wav', (tmp_path / 'take.wav').read_bytes(), 'audio/wav')}))
    served = _served(client, status)[0]
  record = status['outputs'][0]['sidecar']
  options = {'duration': 1.6} if mode == 'continuation' else {'infill': (0.1, 0.75), 'best_of': 2}
  written = sample(SampleOptions(prompts=(Prompt('calm piano'),), checkpoint=str(tiny_pipeline_folder), seed=5,
                                 out=str(tmp_path / 'cli'), audio_prompt=str(tmp_path / 'take.wav'), **options),
                   log=lambda line: None)
  assert written[0]['seed'] == record['seed'] and written[0]['path'].endswith(f'calm-piano_{record["seed"]}.wav')
  if mode == 'infill':
    assert record['best_of']['seeds'] == [5, 6] and record['best_of'] == written[0]['best_of']
  cli = soundfile.read(written[0]['path'], dtype='int32')[0]
  assert served.shape == cli.shape == (int(1.6 * rate) if mode == 'continuation' else upload.shape[-1],)
  np.testing.assert_array_equal(served, cli)
