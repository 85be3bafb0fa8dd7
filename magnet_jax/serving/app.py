"""The HTTP API and the web page (FastAPI; OpenAPI schema at /openapi.json, docs at /docs and /redoc with their
scripts served from here (fastapi-offline), so they work without internet), and `serve`.

Errors are one-line JSON objects, {"error": "..."}, with a 4xx status for anything the client can fix. Every
request first passes `guard.Guard` (Host, Origin, token, body size). `serve` runs uvicorn with bounded connections
and a header-read timeout, and drains on SIGTERM with the listener still open (see `serve`).
"""
import asyncio
import contextlib
import ipaddress
import json
import os
import threading
from collections.abc import Callable
from importlib import resources
from typing import Annotated

import pydantic
import uvicorn
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from magnet_jax.serving import guard, live
from magnet_jax.serving.schema import Created, Error, GenerationRequest
from magnet_jax.serving.service import Log, ServeOptions, Service, ServiceError

STATIC = resources.files('magnet_jax.serving') / 'static'
EVENT_POLL_S = 0.1  # how often a progress stream looks for news
ERRORS = {code: {'model': Error} for code in (400, 401, 403, 404, 409, 410, 413, 422, 429, 503)}
JSON_BODY_LIMIT = 2 ** 20  # bytes of any body but an upload's
FORM_OVERHEAD = 2 ** 20  # bytes an upload's body may hold besides the file (its request JSON, the boundaries)
MAX_HEADER_BYTES = 16 * 2 ** 10  # request line and headers (h11's largest incomplete event)
SHUTDOWN_GRACE_S = 2  # seconds connections get to close once the drain is over


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
  return JSONResponse({'error': ' '.join(message.split())}, status, headers=headers)


def _validation_message(error: pydantic.ValidationError | RequestValidationError) -> str:
  first = error.errors()[0]
  where = '.'.join(str(part) for part in first['loc'] if part != 'body')
  more = len(error.errors()) - 1
  return f'{where}: {first["msg"]}' + (f' (and {more} more)' if more else '')


def body_limit(options: ServeOptions) -> Callable[[str], int]:
  """A request path -> the most bytes its body may hold."""
  upload = int(options.max_upload_mb * 2 ** 20) + FORM_OVERHEAD
  return lambda path: upload if path == '/v1/generations/upload' else JSON_BODY_LIMIT


def create_app(service: Service) -> FastAPI:
  """The API over `service` (started and drained by the app's lifespan, unless `serve` drained it already)."""
  @contextlib.asynccontextmanager
  async def lifespan(_):
    service.start()
    yield
    if not service.scheduler.closing:
      await asyncio.to_thread(service.close)

  app = FastAPIOffline(title='magnet-jax', summary='Text-to-music generation with MAGNeT in JAX: a batching server.',
                version='1', lifespan=lifespan)
  options = service.options
  app.add_middleware(guard.Guard, limit=body_limit(options), hosts=guard.host_names(options.allow_hosts),
                     origins=options.allow_origins, token=options.token)

  @app.exception_handler(ServiceError)
  async def service_error(_, e: ServiceError):
    return _error(e.status, str(e), e.headers)

  @app.exception_handler(RequestValidationError)
  async def validation_error(_, e: RequestValidationError):
    service.metrics.rejected.labels('422').inc()
    return _error(422, _validation_message(e))

  @app.exception_handler(HTTPException)
  async def http_error(_, e: HTTPException):
    return _error(e.status_code, str(e.detail), getattr(e, 'headers', None))

  def created(job) -> Created:
    return Created(id=job.id, status=f'/v1/generations/{job.id}', events=f'/v1/generations/{job.id}/events')

  @app.post('/v1/generations', status_code=202, response_model=Created, responses=ERRORS)
  async def create(request: GenerationRequest) -> Created:
    """Queues a generation from text (mode text, or loop without audio)."""
    return created(await asyncio.to_thread(service.create, request))

  @app.post('/v1/generations/upload', status_code=202, response_model=Created, responses=ERRORS)
  async def create_with_audio(
      request: Annotated[str, Form(description='The GenerationRequest as JSON.')],
      audio: Annotated[UploadFile, File(description='Audio to continue, infill, outpaint or loop.')]):
    """Queues a generation with an uploaded audio file (WAV, FLAC, OGG, ...)."""
    try:
      parsed = GenerationRequest.model_validate_json(request)
    except pydantic.ValidationError as e:
      service.metrics.rejected.labels('422').inc()
      return _error(422, _validation_message(e))
    limit = int(service.options.max_upload_mb * 2 ** 20)
    data = await audio.read(limit + 1)
    return created(await asyncio.to_thread(service.create, parsed, data))

  @app.get('/v1/generations/{job_id}', responses=ERRORS)
  async def status(job_id: str) -> dict:
    """State, progress (steps done / total), timings, batch sizes and each output's sidecar and audio URL."""
    return service.job(job_id).status()

  @app.get('/v1/generations/{job_id}/events', responses=ERRORS,
           response_class=StreamingResponse)
  async def events(job_id: str, request: Request):
    """Server-sent events: the job's status (as GET /v1/generations/{id}) whenever it changes, until it ends."""
    job = service.job(job_id)

    async def stream():
      seen = -1
      while not await request.is_disconnected():
        if job.version != seen:
          seen = job.version
          yield f'event: status\ndata: {json.dumps(job.status(), allow_nan=False)}\n\n'
          if job.final:
            return
        await asyncio.sleep(EVENT_POLL_S)
    return StreamingResponse(stream(), media_type='text/event-stream', headers={'Cache-Control': 'no-cache'})

  @app.get('/v1/generations/{job_id}/audio/{index}', responses=ERRORS, response_class=FileResponse)
  async def output(job_id: str, index: int):
    """Output `index` of a job (WAV or FLAC, as requested), named `<prompt slug>_<seed>` as on the server's disk."""
    job = service.job(job_id)
    if not 0 <= index < len(job.paths) or job.paths[index] is None:
      raise ServiceError(404, f'job {job_id} has no finished output {index} (state {job.state})')
    if not os.path.isfile(job.paths[index]):
      raise ServiceError(410, f'output {index} of job {job_id} was removed from the server\'s output folder')
    return FileResponse(job.paths[index], media_type=f'audio/{job.file_format}',
                        filename=os.path.basename(job.paths[index]))

  @app.delete('/v1/generations/{job_id}', responses=ERRORS)
  async def cancel(job_id: str) -> dict:
    """Cancels a job: its queued outputs are dropped; a batch already running finishes unpublished."""
    job = service.job(job_id)
    if not service.scheduler.cancel(job):
      raise ServiceError(409, f'job {job_id} already ended ({job.state})')
    return {'id': job.id, 'state': job.state}

  @app.get('/v1/jobs')
  async def jobs(limit: int = 50) -> list[dict]:
    """The latest jobs' statuses (as GET /v1/generations/{id}), newest first: a client's history."""
    if not 1 <= limit <= 1000:
      raise ServiceError(422, f'limit must be 1-1000, got {limit}')
    return [job.status() for job in service.jobs.latest(limit)]

  @app.get('/v1/health', responses={503: {'description': 'Warming up: Retry-After and an estimate in "error".'}})
  async def health() -> dict:
    """Readiness and queue depth: 503 with Retry-After while the start-up programs compile ("warming up, about N s
    left"), as every generation route answers then."""
    warming = service.not_ready()
    if warming is not None:
      return JSONResponse({'status': 'warming up', 'error': str(warming), 'queued': service.scheduler.depth}, 503,
                          headers=warming.headers)
    return {'status': 'ok', 'queued': service.scheduler.depth}

  @app.get('/v1/info')
  async def info(request: Request) -> dict:
    """Limits, presets, modes, formats, the model and the devices (the checkpoint's folder by name only, unless
    the server has a token and the request carries it)."""
    answer = service.info()
    if not request.scope.get('magnet_authenticated'):
      answer['checkpoint'] = os.path.basename(answer['checkpoint'].rstrip(os.sep))
    return answer

  @app.get('/metrics', response_class=Response)
  async def metrics():
    """Prometheus metrics."""
    return Response(service.metrics.render(), media_type='text/plain; version=0.0.4')

  @app.get('/', response_class=HTMLResponse, include_in_schema=False)
  async def page():
    return HTMLResponse((STATIC / 'index.html').read_text())

  live.mount(app, service)
  app.mount('/static', StaticFiles(directory=str(STATIC)), name='static')
  return app


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
  """uvicorn's h11 protocol, closing a connection that has not sent its request headers within `seconds` of
  opening (uvicorn itself waits forever: half-open connections would pile up until nothing else gets in)."""
  class Protocol(H11Protocol):
    def connection_made(self, transport):
      super().connection_made(transport)
      self._header_timer = self.loop.call_later(seconds, self._headers_late)

    def _headers_late(self):
      if self.cycle is None and not self.transport.is_closing():
        self.transport.close()

    def connection_lost(self, exc):
      self._header_timer.cancel()
      super().connection_lost(exc)
  return Protocol


class DrainingServer(uvicorn.Server):
  """uvicorn, but SIGTERM / Ctrl-C first drains the service with the listener still open: new jobs get 503,
  status, progress streams and audio are answered, every job ends (done or failed) and so every progress stream
  gets its final state; then uvicorn shuts down as usual (connections get `SHUTDOWN_GRACE_S`). A second signal
  stops at once."""

  def __init__(self, config: uvicorn.Config, service: Service):
    super().__init__(config)
    self.service, self._drain = service, None

  def handle_exit(self, sig, frame) -> None:
    if self._drain is not None:
      return super().handle_exit(sig, frame)

    def drain():
      self.service.close()
      uvicorn.Server.handle_exit(self, sig, frame)
    self._drain = threading.Thread(target=drain, name='magnet-jax-drain', daemon=True)
    self._drain.start()


def uvicorn_config(app, options: ServeOptions) -> uvicorn.Config:
  """uvicorn's limits: connections, header size and time, keep-alive (docs/serving.md)."""
  return uvicorn.Config(app, host=options.host, port=options.port, log_level='warning',
                        http=header_timeout_protocol(options.header_timeout),
                        limit_concurrency=options.max_connections, timeout_keep_alive=options.keep_alive,
                        h11_max_incomplete_event_size=MAX_HEADER_BYTES, timeout_graceful_shutdown=SHUTDOWN_GRACE_S)


def loopback(host: str) -> bool:
  """Whether listening on `host` reaches this machine only."""
  try:
    return ipaddress.ip_address(host.strip('[]')).is_loopback
  except ValueError:
    return host == 'localhost'


def serve(options: ServeOptions, log: Log = print) -> None:
  """Loads the model, listens, compiles the common programs meanwhile (generations get 503 with an estimate until
  then, `Service.not_ready`), serves until SIGINT / SIGTERM, then drains."""
  from magnet_jax.generation import pretrained  # the model loads only when serving, not on import
  if not loopback(options.host):
    log(f'warning: listening on {options.host}, beyond this machine: anyone who can reach it can queue work'
        f'{"" if options.token else " (serve --token sets a bearer token)"}')
  log(f'loading {options.checkpoint or "the embedded default"}')
  kwargs = {} if options.dtype is None else {'dtype': options.dtype}
  service = Service(pretrained.load(options.checkpoint, **kwargs), options, log)
  info = service.info()
  log(f'{info["devices"]["count"]} device(s) ({info["devices"]["kind"]}, mesh {info["devices"]["mesh"]}); outputs '
      f'in {service.out}')
  service.start_warm_up()
  log(f'serving on http://{options.host}:{options.port} (API docs: /docs); warming up, generations wait for it')
  DrainingServer(uvicorn_config(create_app(service), options), service).run()
