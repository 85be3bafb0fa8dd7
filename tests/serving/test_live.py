"""The live WebSocket (`serving/live.py`) in process: chunks arrive with their metadata and a prompt change shows in
the next window's, a listener that leaves stops its stream's generation, streams are bounded (a refusal with a
reason), a client that never acknowledges is closed with a reason, a bad start is one line, and the server keeps
serving the others; the limits are `magnet-jax serve`'s options (`--live-*`)."""
import dataclasses
import json
import re
import struct
import time

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import random_pipeline
from magnet_jax.serving.app import create_app
from magnet_jax.serving.service import ServeOptions, Service

LIVE = 'ws://localhost/v1/live'  # starlette's test client sends Host: testserver unless the URL names one


@pytest.fixture(scope='module')
def served():
  pipeline = random_pipeline.build(decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)))
  app = create_app(Service(pipeline, ServeOptions(warmup=())))
  with TestClient(app, base_url='http://localhost') as client:  # a Host the guard accepts
    yield client, app.state.live


@pytest.fixture
def hub(served):
  return served[1]


def _limits(hub, monkeypatch, **fields) -> None:
  """Sets the live limits (`ServeOptions.live_*`, `magnet-jax serve --live-*`) for one test."""
  monkeypatch.setattr(hub, 'options', dataclasses.replace(hub.options, **fields))


def _start(socket, **fields) -> dict:
  socket.send_text(json.dumps({'type': 'start', 'prompt': 'calm piano', 'seed': 1, **fields}))
  return socket.receive_json()


def _chunk(socket) -> tuple[dict, int]:
  data = socket.receive_bytes()
  length = struct.unpack('<I', data[:4])[0]
  return json.loads(data[4:4 + length]), (len(data) - 4 - length) // 4


def _wait(condition, seconds: float = 120) -> None:
  deadline = time.monotonic() + seconds
  while not condition():
    assert time.monotonic() < deadline, 'timed out'
    time.sleep(0.02)


def test_chunks_arrive_and_a_change_shows_in_the_next_window(served, hub):
  client = served[0]
  with client.websocket_connect(LIVE) as socket:
    started = _start(socket)
    assert (started['type'], started['sample_rate'], started['seed'], started['ahead']) == ('started', 1600, 1, 2)
    metas = []
    for index in range(3):
      meta, samples = _chunk(socket)
      assert meta['index'] == index and samples == round(meta['seconds'] * 1600) and meta['prompt'] == 'calm piano'
      metas.append(meta)
      socket.send_text(json.dumps({'type': 'played', 'index': index}))  # a player starts each chunk as it comes
    assert metas[1]['start'] == pytest.approx(metas[0]['start'] + metas[0]['seconds'])
    socket.send_text(json.dumps({'type': 'controls', 'prompt': 'loud drums', 'bpm': 120}))
    reply = socket.receive_json()
    assert reply['type'] == 'controls' and reply['prompt'] == 'loud drums'
    applies = reply['applies_from']
    for index in range(3, applies + 2):
      meta, _ = _chunk(socket)
      assert meta['index'] == index
      socket.send_text(json.dumps({'type': 'played', 'index': index}))
      assert (meta['prompt'], meta['bpm']) == (('loud drums', 120) if index >= applies else ('calm piano', None))
    socket.send_text(json.dumps({'type': 'controls', 'preset': 'best'}))
    assert socket.receive_json()['error'].startswith('preset: Input should be')


def test_a_listener_that_leaves_stops_its_stream(served, hub):
  with served[0].websocket_connect(LIVE) as socket:
    _start(socket)
    _chunk(socket)
  _wait(lambda: hub.streams == 0)
  windows = hub.windows
  time.sleep(1.0)  # many windows' time
  assert hub.windows == windows


def test_streams_are_bounded_and_a_silent_client_is_closed(served, hub, monkeypatch):
  client = served[0]
  _limits(hub, monkeypatch, live_streams=1, live_ack_timeout=1.0)
  with client.websocket_connect(LIVE) as silent:
    _start(silent)
    _wait(lambda: hub.streams == 1)
    with client.websocket_connect(LIVE) as refused:
      assert 'stream(s) already playing (the limit)' in refused.receive_json()['error']
      with pytest.raises(WebSocketDisconnect) as closed:
        refused.receive_text()
      assert closed.value.code == 1013
    for _ in range(2):  # ahead=2 chunks before one plays, and none is acknowledged
      _chunk(silent)
    assert 'no "played" message for 1 s' in silent.receive_json()['error']
    with pytest.raises(WebSocketDisconnect) as closed:
      silent.receive_text()
    assert closed.value.code == 1008
  _wait(lambda: hub.streams == 0)
  with client.websocket_connect(LIVE) as bad:  # a bad start: one line, closed
    bad.send_text(json.dumps({'type': 'start', 'prompt': '', 'seed': 1}))
    assert bad.receive_json()['error'] == 'live: prompt: String should have at least 1 character'
  with client.websocket_connect(LIVE) as socket:  # the server still serves
    assert _start(socket)['type'] == 'started'
    assert _chunk(socket)[0]['index'] == 0
  assert client.get('/v1/health').json()['status'] == 'ok'


def test_the_limits_are_the_serve_options_and_shown_in_info(served, hub, monkeypatch):
  client = served[0]
  assert client.get('/v1/info').json()['live'] == {'max_streams': 2, 'ahead': 2, 'ack_timeout': 30.0}
  _limits(hub, monkeypatch, live_ahead=3)
  with client.websocket_connect(LIVE) as socket:
    assert _start(socket)['ahead'] == 3
    assert [_chunk(socket)[0]['index'] for _ in range(3)] == [0, 1, 2]  # three before any is acknowledged
  _wait(lambda: hub.streams == 0)
  _limits(hub, monkeypatch, live_streams=0)
  with client.websocket_connect(LIVE) as off:
    assert off.receive_json()['error'] == 'live: live music is off on this server (--live-streams 0)'
    with pytest.raises(WebSocketDisconnect) as closed:
      off.receive_text()
    assert closed.value.code == 1008


def test_a_stream_waits_for_the_warm_up(served, hub, monkeypatch):
  monkeypatch.setattr(hub.service, 'warming', {'total': 2, 'seconds': [], 'started': time.monotonic()})
  with served[0].websocket_connect(LIVE) as early:
    assert early.receive_json()['error'].startswith('live: warming up: compiling program 1 of 2')
    with pytest.raises(WebSocketDisconnect) as closed:
      early.receive_text()
    assert closed.value.code == 1013 and hub.streams == 0


def test_bad_limits_are_one_line_before_anything_loads():
  for fields, message in [({'live_streams': -1}, '--live-streams must be an integer in [0, 1024], got -1'),
                          ({'live_streams': 2.5}, '--live-streams must be an integer in [0, 1024], got 2.5'),
                          ({'live_ahead': 0}, '--live-ahead must be an integer in [1, 16], got 0'),
                          ({'live_ack_timeout': 0.5}, '--live-ack-timeout must be a number in [1, 3600], got 0.5'),
                          ({'live_ack_timeout': float('nan')}, '--live-ack-timeout must be a number in [1, 3600]')]:
    with pytest.raises(ValueError, match=re.escape(message)):
      ServeOptions(**fields)


def test_a_page_of_another_site_cannot_open_a_stream(served):
  client = served[0]
  with pytest.raises(WebSocketDisconnect) as refused:
    with client.websocket_connect(LIVE, headers={'origin': 'http://evil.example'}) as socket:
      socket.receive_json()
  assert refused.value.code == 1008 and 'cross-origin' in refused.value.reason
  with pytest.raises(WebSocketDisconnect) as refused:
    with client.websocket_connect(LIVE, headers={'host': 'rebound.example'}) as socket:
      socket.receive_json()
  assert refused.value.code == 1008 and 'rebound.example' in refused.value.reason
