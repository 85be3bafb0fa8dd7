"""Live music over a WebSocket (`/v1/live`) and its page (`/live`): each listener gets its own `LiveStream`.

Why a WebSocket rather than chunked HTTP audio: the stream needs both directions at once. The server sends each
chunk with its metadata (window index, start, the controls it was generated with) in one binary message; the page
sends prompt changes and tells which chunk it started playing, so the server generates only `ahead` chunks beyond
what is heard (back-pressure from playback, not from socket buffers, which would let a stream run minutes ahead)
and notices at once when a listener leaves (the socket closes; the stream stops after its current window).

Protocol (JSON text messages, binary chunks):
  client -> {"type": "start", "prompt": ..., "negative": null, "bpm": null, "preset": null, "seed": null}
  server -> {"type": "started", "sample_rate", "channels", "seed", "ahead", "window_seconds"}
  server -> binary: uint32 little-endian n, n bytes of the chunk's JSON metadata (`Chunk.meta`), then its samples
            as float32 little-endian, channels interleaved
  client -> {"type": "played", "index": i}       the page started playing chunk i
  client -> {"type": "controls", "prompt": ...}  any of prompt / negative / bpm / preset, from the next window
  server -> {"type": "controls", "applies_from": i, ...the change}  or {"type": "error", "error": "..."}
Closes: 1013 past the stream limit, 1008 a server without live music, a bad start or a client that acknowledges
nothing for `live_ack_timeout` seconds (a client that never reads), 1011 a failed window; each with a one-line reason.
"""
import asyncio
import contextlib
import json
import struct
import threading
from importlib import resources
from typing import Literal

import numpy as np
import pydantic
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

from magnet_jax.decoding import presets
from magnet_jax.generation import live
from magnet_jax.serving.service import Service

CLOSE_BUSY, CLOSE_POLICY, CLOSE_ERROR = 1013, 1008, 1011
START_TIMEOUT_S = 30.0  # seconds a new connection has to send its start message


class Controls(pydantic.BaseModel):
  """A change of controls; a field left out keeps its value."""
  model_config = pydantic.ConfigDict(extra='forbid', strict=True)
  type: Literal['controls'] = 'controls'
  prompt: str | None = pydantic.Field(None, min_length=1, max_length=1000)
  negative: str | None = pydantic.Field(None, max_length=1000)
  bpm: float | None = pydantic.Field(None, ge=live.BPM_RANGE[0], le=live.BPM_RANGE[1])
  preset: Literal[tuple(sorted(presets.PRESETS))] | None = None


class Start(Controls):
  """The first message of a stream."""
  type: Literal['start'] = 'start'
  prompt: str = pydantic.Field(min_length=1, max_length=1000)
  seed: int | None = pydantic.Field(None, ge=0, lt=2 ** 31)


class Hub:
  """The live streams of a server: their count (bounded), one lock so that their windows run one at a time, and
  the windows generated (for metrics and tests). Its limits are the service's options (`live_streams`,
  `live_ahead`, `live_ack_timeout`: `magnet-jax serve --live-streams ...`)."""

  def __init__(self, service: Service):
    self.service, self.options = service, service.options
    self.streams, self.windows = 0, 0
    self._device = threading.Lock()
    self._seeds = np.random.default_rng()

  @contextlib.contextmanager
  def device(self):
    """Around every window: one window at a time, on the service's devices."""
    with self._device, self.service.devices.context():
      yield

  def open(self, start: Start) -> live.LiveStream:
    pipeline = self.service.pipeline
    seed = int(self._seeds.integers(2 ** 31)) if start.seed is None else start.seed
    controls = live.Controls(start.prompt, start.negative, start.bpm, start.preset)
    return live.LiveStream(pipeline, controls, seed=seed, context=self.device)


def _error(message: str) -> dict:
  return {'type': 'error', 'error': ' '.join(str(message).split())}


def _validation(error: pydantic.ValidationError) -> str:
  first = error.errors()[0]
  return f'{".".join(str(part) for part in first["loc"]) or "message"}: {first["msg"]}'


def pack(chunk: live.Chunk, sample_rate: int) -> bytes:
  """A chunk as one binary message (see the module docstring)."""
  meta = json.dumps(chunk.meta(sample_rate)).encode()
  return struct.pack('<I', len(meta)) + meta + np.ascontiguousarray(chunk.audio.T, '<f4').tobytes()


async def _close(socket: WebSocket, code: int, reason: str) -> None:
  with contextlib.suppress(Exception):  # the client may be gone already
    await socket.send_json(_error(reason))
    await socket.close(code, reason.encode()[:120].decode(errors='ignore'))  # a close reason is at most 123 bytes


async def _stream(socket: WebSocket, hub: Hub) -> None:
  """One listener, counted from its connection (a slot is taken before its start message arrives)."""
  await socket.accept()
  if not hub.options.live_streams:
    return await _close(socket, CLOSE_POLICY, 'live: live music is off on this server (--live-streams 0)')
  warming = hub.service.not_ready()
  if warming:
    return await _close(socket, CLOSE_BUSY, f'live: {warming}')
  if hub.streams >= hub.options.live_streams:
    return await _close(socket, CLOSE_BUSY, f'live: {hub.options.live_streams} stream(s) already playing (the '
                        f'limit); try again later')
  hub.streams += 1
  try:
    await _play(socket, hub)
  finally:
    hub.streams -= 1


async def _play(socket: WebSocket, hub: Hub) -> None:
  """Start, then chunks as playback allows, controls as they come (see the module docstring)."""
  try:
    start = Start.model_validate_json(await asyncio.wait_for(socket.receive_text(), START_TIMEOUT_S))
    stream = await asyncio.to_thread(hub.open, start)
  except (pydantic.ValidationError, ValueError, TimeoutError, KeyError) as e:
    message = _validation(e) if isinstance(e, pydantic.ValidationError) else e
    return await _close(socket, CLOSE_POLICY, f'live: {"no start message" if isinstance(e, TimeoutError) else message}')
  except WebSocketDisconnect:
    return
  options, sample_rate = hub.options, stream.sample_rate
  played, news, sending = -1, asyncio.Event(), asyncio.Lock()

  async def send(message: dict | bytes) -> None:
    async with sending:
      await (socket.send_bytes(message) if isinstance(message, bytes) else socket.send_json(message))

  async def receive() -> None:
    nonlocal played
    while True:
      try:
        message = json.loads(await socket.receive_text())
        if message.get('type') == 'played':
          played = max(played, int(message['index']))
        else:
          change = Controls.model_validate(message).model_dump(exclude_unset=True, exclude={'type'})
          applies = stream.change(**change)
          await send({'type': 'controls', 'applies_from': applies, **change})
      except (WebSocketDisconnect, RuntimeError):  # RuntimeError: the socket closed under us
        return
      except pydantic.ValidationError as e:
        await send(_error(_validation(e)))
      except (ValueError, KeyError, TypeError, AttributeError) as e:
        await send(_error(e))
      finally:
        news.set()

  receiver = asyncio.create_task(receive())
  try:
    await send({'type': 'started', 'sample_rate': sample_rate, 'channels': hub.service.pipeline.codec_config.channels,
                'seed': stream.seed, 'ahead': options.live_ahead,
                'window_seconds': hub.service.window_seconds})
    sent = 0
    while not receiver.done() and not stream.finished:
      if sent > played + options.live_ahead:
        news.clear()
        try:
          await asyncio.wait_for(news.wait(), options.live_ack_timeout)
        except TimeoutError:
          return await _close(socket, CLOSE_POLICY, f'live: no "played" message for {options.live_ack_timeout:g} s; '
                              f'closing (a client must read and acknowledge the chunks)')
        continue
      try:
        chunk = await asyncio.to_thread(stream.next_chunk)
      except Exception as e:  # a failed window (non-finite logits, ...) ends this stream only
        return await _close(socket, CLOSE_ERROR, f'live: {e}')
      hub.windows += 1
      if receiver.done():
        break
      await send(pack(chunk, sample_rate))
      sent += 1
    if stream.finished:
      await _close(socket, 1000, 'live: the stream ended')
  except (WebSocketDisconnect, RuntimeError):
    pass
  finally:
    receiver.cancel()


def mount(app: FastAPI, service: Service) -> Hub:
  """Adds `/v1/live` (the WebSocket) and `/live` (the page) to `app`; the hub is `app.state.live`."""
  hub = app.state.live = Hub(service)

  @app.websocket('/v1/live')
  async def live_stream(socket: WebSocket):
    await _stream(socket, hub)

  @app.get('/live', response_class=HTMLResponse, include_in_schema=False)
  async def live_page():
    return HTMLResponse((resources.files('magnet_jax.serving') / 'static' / 'live.html').read_text())

  return hub
