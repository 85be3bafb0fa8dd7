"""/docs and /redoc load their scripts from this server (they work offline), and GET /v1/jobs lists the latest jobs
for a client's history."""
import re
import time

import pytest
from fastapi.testclient import TestClient

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import random_pipeline
from magnet_jax.serving.app import create_app
from magnet_jax.serving.service import ServeOptions, Service


@pytest.fixture(scope='module')
def client():
  pipeline = random_pipeline.build(decoding=DecodingConfig(decoding_steps=(2, 1, 1, 1)))
  with TestClient(create_app(Service(pipeline, ServeOptions(max_batch=1, max_wait=0.0, warmup=()))),
                  base_url='http://localhost') as client:  # a Host the guard accepts
    yield client


@pytest.mark.parametrize('page', ['/docs', '/redoc'])
def test_the_docs_pages_need_no_internet(client, page):
  html = client.get(page).text
  scripts = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
  assert scripts and all(url.startswith('/') for url in scripts), scripts
  for url in scripts:
    answer = client.get(url)
    assert answer.status_code == 200 and len(answer.content) > 10_000


def test_jobs_lists_the_latest_first(client):
  assert client.get('/v1/jobs').json() == []
  ids = [client.post('/v1/generations', json={'prompts': ['piano'], 'duration': 0.12, 'seed': s}).json()['id']
         for s in (1, 2)]
  for _ in range(3000):
    listed = client.get('/v1/jobs').json()
    if all(job['state'] == 'done' for job in listed):
      break
    time.sleep(0.1)
  assert [job['id'] for job in listed] == ids[::-1] and listed[0]['outputs'][0]['sidecar']['seed'] == 2
  assert [job['id'] for job in client.get('/v1/jobs?limit=1').json()] == ids[1:]
  assert client.get('/v1/jobs?limit=0').status_code == 422
