"""The server's state: the pipeline on its devices, the scheduler, the jobs and their output files.

`Service.create` turns an API request into a job of one `generation.request.Request` per output, checked by the
same `request.check` as the command line's (or a `ServiceError` with an HTTP status); the scheduler's worker runs
batches through `engine.generate` and publishes each output atomically with its sidecar (`generation.records`, the
same record the command line writes).
"""
import dataclasses
import io
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable

import numpy as np
import soundfile

from magnet_jax.audio import convert
from magnet_jax.audio import files as audio_io
from magnet_jax.decoding import presets
from magnet_jax.evaluation import prompt_following  # noqa: F401 (registers the best-of scorers)
from magnet_jax.generation import best_of, live, prompt_schedule, records
from magnet_jax.generation import request as request_lib
from magnet_jax.generation.pipeline import MagnetPipeline, batch_bucket
from magnet_jax.generation.prompts import MAX_SEED, Output, expand
from magnet_jax.generation.request import Request
from magnet_jax.serving import engine
from magnet_jax.serving.jobs import Item, Job, JobTable
from magnet_jax.serving.metrics import Metrics
from magnet_jax.serving.scheduler import Draining, QueueFull, Scheduler, one_line
from magnet_jax.serving.schema import MAX_DEADLINE_S, GenerationRequest

Log = Callable[[str], None]
KEEP_JOBS = 1000  # ended jobs kept for status queries (their files stay in the output folder)
CHARS_PER_TOKEN = 16  # a prompt longer than this many characters per allowed token is refused before tokenizing
UPLOAD_RATES = (1000, 384_000)  # Hz an upload may declare (the codec's rate is within)
# Long form runs window by window, so an output's memory is one window's plus its audio, and its time grows with
# its length: 30 s (three windows of the released 10 s models) takes a take of a song's section and bounds how long
# one output holds the worker.
DEFAULT_MAX_DURATION = 30.0
WARMUP_RETRY_S = 5  # Retry-After while warming up before the first program's time is known
UPLOAD_DECODE_FACTOR = 32  # decoded float32 samples of an upload, in bytes, at most this many times its size


@dataclasses.dataclass(frozen=True)
class ServeOptions:
  """`magnet-jax serve` as data (its flags)."""
  checkpoint: str | None = None   # exported or released folder; None: the embedded default.
  host: str = '127.0.0.1'
  port: int = 8000
  out: str | None = None          # where outputs are written (None: a temporary folder, removed at shutdown).
  max_batch: int = 8              # outputs per call of the compiled program.
  max_wait: float = 0.05          # seconds an output waits for batch mates.
  max_queue: int = 64             # queued outputs; more get 429.
  max_prompts: int = 8            # prompts per request.
  max_duration: float | None = None  # seconds per output, uploads included (None: DEFAULT_MAX_DURATION).
  max_prompt_tokens: int = 64     # text is padded to this many tokens (see `engine`); longer prompts get 422.
  max_upload_mb: float = 20.0     # uploaded audio; larger gets 413.
  deadline: float = 600.0         # default seconds within which a job must start.
  warmup: tuple[float, ...] | None = None  # durations compiled for every batch bucket at start (None: default).
  sharding: str = 'data_parallel'  # parallel.sharding preset for the LM's parameters.
  model_parallel: int = 1         # size of the mesh's `model` axis (tensor parallel).
  drain: float = 60.0             # seconds SIGTERM waits for queued jobs.
  dtype: str | None = None        # LM compute dtype (None: bfloat16 on accelerators, float32 on CPU).
  token: str | None = None        # bearer token every API request must carry (None: none; see serving.guard).
  allow_hosts: tuple[str, ...] = ()    # Host names accepted besides IP literals, localhost and this machine's.
  allow_origins: tuple[str, ...] = ()  # web origins (scheme://host[:port]) allowed besides the server's own.
  max_connections: int = 256      # open connections and tasks; more get 503 (uvicorn's limit_concurrency).
  header_timeout: float = 10.0    # seconds a new connection has to send its request headers.
  keep_alive: float = 5.0         # seconds an idle keep-alive connection stays open.
  live_streams: int = 2           # live listeners at once (serving.live); more are refused (0: no live music).
  live_ahead: int = 2             # live chunks sent beyond the one a listener plays.
  live_ack_timeout: float = 30.0  # seconds a live listener may go without acknowledging a chunk, while one is due.

  def __post_init__(self):
    """Every limit is checked here, before anything loads (one ValueError naming the flag)."""
    def bounded(name: str, value, low, high, integer: bool = False):
      kind = 'an integer' if integer else 'a number'
      if (isinstance(value, bool) or not isinstance(value, int if integer else int | float)
          or not low <= value <= high):
        raise ValueError(f'--{name} must be {kind} in [{low:g}, {high:g}], got {value!r}')
    bounded('port', self.port, 1, 65535, integer=True)
    bounded('max-batch', self.max_batch, 1, 1024, integer=True)
    bounded('max-wait', self.max_wait, 0, 60)
    bounded('max-queue', self.max_queue, 1, 1_000_000, integer=True)
    bounded('max-prompts', self.max_prompts, 1, 1024, integer=True)
    if self.max_duration is not None:
      bounded('max-duration', self.max_duration, 0.01, 24 * 3600)
    bounded('max-prompt-tokens', self.max_prompt_tokens, 1, 4096, integer=True)
    bounded('max-upload-mb', self.max_upload_mb, 0.001, 4096)
    bounded('deadline', self.deadline, 0.001, MAX_DEADLINE_S)
    bounded('drain', self.drain, 0, 24 * 3600)
    for seconds in self.warmup or ():
      bounded('warmup', seconds, 0.001, 24 * 3600)
    bounded('model-parallel', self.model_parallel, 1, 65536, integer=True)
    bounded('max-connections', self.max_connections, 1, 1_000_000, integer=True)
    bounded('header-timeout', self.header_timeout, 0.01, 3600)
    bounded('keep-alive', self.keep_alive, 0.01, 3600)
    bounded('live-streams', self.live_streams, 0, 1024, integer=True)
    bounded('live-ahead', self.live_ahead, 1, live.MAX_AHEAD, integer=True)
    bounded('live-ack-timeout', self.live_ack_timeout, 1, 3600)
    if self.token is not None and not self.token.strip():
      raise ValueError('--token must not be empty')


class ServiceError(Exception):
  """A request the server refuses: HTTP `status`, a one-line message, optional headers."""

  def __init__(self, status: int, message: str, headers: dict | None = None):
    super().__init__(message)
    self.status, self.headers = status, headers or {}


class Service:
  """The pipeline behind the API (see the module docstring)."""

  def __init__(self, pipeline: MagnetPipeline, options: ServeOptions, log: Log = print):
    self.pipeline, self.options, self.log = pipeline, options, log
    pipeline.text_pad_to = options.max_prompt_tokens
    self.devices = engine.place(pipeline, options.sharding, options.model_parallel)
    # The default duration is the model's segment, which the window (rounded up to whole spans) holds.
    self.max_duration = options.max_duration or max(DEFAULT_MAX_DURATION, self.window_seconds, pipeline.duration)
    self.temporary = options.out is None  # the folder goes with the server
    self.out = options.out or tempfile.mkdtemp(prefix='magnet-jax-serve-')
    os.makedirs(self.out, exist_ok=True)
    self.warming: dict | None = None  # while `start_warm_up`'s programs compile: their count, times and start
    self.scheduler = Scheduler(self._run, options.max_batch, options.max_wait, options.max_queue,
                               on_batch=lambda size: self.metrics.batch_size.observe(size))
    self.metrics = Metrics(lambda: self.scheduler.depth)
    pipeline.on_compile = self._compiling
    self.jobs = JobTable(KEEP_JOBS)
    self.checkpoint = os.path.abspath(options.checkpoint) if options.checkpoint else 'embedded default'
    self.versions = records.versions()

  @property
  def window_seconds(self) -> float:
    return self.pipeline.window_frames(self.pipeline.decoding) / self.pipeline.frame_rate

  def _compiling(self, what: str) -> None:
    self.metrics.compiles.inc()
    self.log(f'compiling: {what}')

  def info(self) -> dict:
    """What a client needs to build requests (GET /v1/info)."""
    lm = self.pipeline.lm_config
    return {'checkpoint': self.checkpoint, 'sample_rate': self.pipeline.sample_rate,
            'channels': self.pipeline.codec_config.channels, 'default_duration': self.pipeline.duration,
            'max_duration': self.max_duration, 'max_prompts': self.options.max_prompts,
            'max_prompt_tokens': self.options.max_prompt_tokens, 'max_upload_mb': self.options.max_upload_mb,
            'max_batch': self.options.max_batch, 'presets': sorted(presets.PRESETS), 'modes': list(request_lib.MODES),
            'max_best_of': best_of.MAX_CANDIDATES,
            'live': {'max_streams': self.options.live_streams, 'ahead': self.options.live_ahead,
                     'ack_timeout': self.options.live_ack_timeout},
            'formats': sorted(audio_io.FORMATS), 'model': {'dim': lm.dim, 'layers': lm.num_layers, 'levels': lm.n_q},
            'devices': {'count': self.devices.mesh.size, 'mesh': dict(self.devices.mesh.shape),
                        'kind': self.versions['device'], 'sharding': self.options.sharding}}

  def start(self) -> None:
    self.scheduler.start()

  def close(self) -> int:
    """Drains (see `Scheduler.close`), removes a temporary output folder; returns the outputs rejected."""
    self.log(f'draining: {self.scheduler.depth} queued output(s), up to {self.options.drain:g} s')
    rejected = self.scheduler.close(self.options.drain)
    if self.temporary:
      shutil.rmtree(self.out, ignore_errors=True)
    self.log(f'stopped ({rejected} output(s) rejected)' + (f'; removed {self.out}' if self.temporary else ''))
    return rejected

  def warm_up(self, durations: tuple[float, ...] | None = None) -> None:
    """Compiles (and runs once) the text programs of every batch bucket up to max_batch for `durations` (default
    `options.warmup`, else the model's default duration) with the default decoding."""
    durations = self.options.warmup if durations is None else durations
    durations = (self.pipeline.duration,) if durations is None else durations
    decoding = self.pipeline.decoding_with()
    sizes = sorted({batch_bucket(n) for n in range(1, self.options.max_batch + 1)})
    programs = [(seconds, size) for seconds in durations for size in sizes]
    self.warming = {'total': len(programs), 'seconds': [], 'started': time.monotonic()}
    try:
      for seconds, size in programs:
        start = time.perf_counter()
        work = engine.Work(Request('warm-up', duration=seconds), decoding, 3)
        engine.generate(self.pipeline, [work] * size, self.devices, stop=lambda: False)
        self.warming['seconds'].append(time.perf_counter() - start)
        self.log(f'warm: {seconds:g} s x batch {size} ({self.warming["seconds"][-1]:.1f} s)')
    finally:
      self.warming = None

  def start_warm_up(self) -> threading.Thread:
    """`warm_up` on a thread of its own; until it ends, `not_ready` refuses generations (the API answers 503)."""
    self.warming = {'total': 1, 'seconds': [], 'started': time.monotonic()}
    thread = threading.Thread(target=self._warm_up_logged, name='magnet-jax-warm-up', daemon=True)
    thread.start()
    return thread

  def _warm_up_logged(self) -> None:
    try:
      self.warm_up()
    except Exception as e:  # noqa: BLE001 (the server still serves; programs then compile on first use)
      self.log(f'warm-up failed, programs compile on first use: {one_line(e)}')

  def not_ready(self) -> ServiceError | None:
    """While warming up: the 503 to answer, with Retry-After and an estimate of the seconds left (from the mean
    time of the programs compiled so far); None once warm."""
    warming = self.warming
    if warming is None:
      return None
    done, times = len(warming['seconds']), list(warming['seconds'])
    if not times:
      return ServiceError(503, f'warming up: compiling program 1 of {warming["total"]} '
                          f'({time.monotonic() - warming["started"]:.0f} s so far)',
                          {'Retry-After': str(WARMUP_RETRY_S)})
    left = max(1, math.ceil(sum(times) / len(times) * (warming['total'] - done)))
    return ServiceError(503, f'warming up, about {left} s left ({done} of {warming["total"]} programs compiled)',
                        {'Retry-After': str(left)})

  # ---- requests -> jobs

  def create(self, request: GenerationRequest, upload: bytes | None = None) -> Job:
    """Checks `request` against the model and the limits, queues it and returns its job.

    Raises:
      ServiceError: 422 (bad values), 413 (upload too large), 400 (undecodable upload), 429 (queue full, with
        Retry-After), 503 (warming up, with Retry-After and an estimate; shutting down).
    """
    warming = self.not_ready()
    if warming is not None:
      self.metrics.rejected.labels('503').inc()
      raise warming
    works, names = self._works(request, upload)
    deadline = request.deadline_s or self.options.deadline
    job = Job(request.model_dump(mode='json'), works, request.format, time.monotonic() + deadline,
              names=names, on_final=self._ended)
    try:
      self.scheduler.submit(job)
    except QueueFull as e:
      self.metrics.rejected.labels('429').inc()
      raise ServiceError(429, str(e), {'Retry-After': str(e.retry_after)}) from e
    except Draining as e:
      self.metrics.rejected.labels('503').inc()
      raise ServiceError(503, str(e)) from e
    self.jobs.add(job)
    return job

  def _ended(self, job: Job) -> None:
    """One log line per request: id, mode, prompts, seconds of audio, seconds taken, final state."""
    seconds = time.time() - job.created
    self.metrics.latency.labels(job.state).observe(seconds)
    first = job.works[0].request
    audio = [r['audio_s'] for r in job.records if r is not None]
    length = audio[0] if audio else (first.duration or (first.tempo.seconds if first.tempo else None)
                                     or first.audio_seconds or self.pipeline.duration)
    self.log(f'job {job.id}: {first.mode}, {len(job.items)} prompt(s), {length:.2f} s of audio each, '
             f'{seconds:.1f} s, {job.state}' + (f' ({job.error})' if job.error else ''))

  def job(self, job_id: str) -> Job:
    job = self.jobs.get(job_id)
    if job is None:
      raise ServiceError(404, f'no job {job_id}')
    return job

  def _works(self, request: GenerationRequest, upload: bytes | None) -> tuple[list[engine.Work], list[Output]]:
    """The request's outputs, checked, with their file names (see `create`)."""
    def bad(message: str, status: int = 422):
      self.metrics.rejected.labels(str(status)).inc()
      return ServiceError(status, message)
    pipeline, options = self.pipeline, self.options
    if len(request.prompts) > options.max_prompts:
      raise bad(f'prompts: {len(request.prompts)} given, at most {options.max_prompts} per request')
    if request.seed + len(request.prompts) > MAX_SEED:
      raise bad(f'seed: {request.seed} + {len(request.prompts)} prompts passes the largest seed, {MAX_SEED - 1}')
    counts = {text: self._tokens(bad, f'prompts.{i}', text) for i, text in enumerate(request.prompts)}
    try:
      prompts = request.prompts_given()
    except ValueError as e:
      raise bad(str(e)) from e
    for j, (_, text) in enumerate(prompt_schedule.entries(prompts[0].description)[1:]):
      counts[text] = self._tokens(bad, f'schedule.{j}', text)
    negative = None if request.negative is None else self._tokens(bad, 'negative', request.negative)
    # Outputs batch only with outputs of equal token counts at equal schedule times (see `engine`).
    tokens = [(tuple((seconds, counts[text]) for seconds, text in prompt_schedule.entries(p.description)), negative)
              for p in prompts]
    try:
      decoding = pipeline.decoding_with(**{**presets.overrides(request.preset, pipeline.lm_config.n_q,
                                                               pipeline.rescorer_params is not None),
                                           **request.overrides()})
    except (ValueError, TypeError) as e:
      raise bad(str(e)) from e
    audio = None if upload is None else self._audio(upload, bad)
    try:
      best_of.check(request.best_of, request.scorer)
      requests = request.to_requests(prompts, audio, pipeline.sample_rate)
      for one in requests:
        request_lib.check(one, self.max_duration, pipeline.duration)
      first = requests[0]
      if request.mode in request_lib.KEEPS_LENGTH or (request.mode == 'loop' and audio is not None):
        frames = math.ceil(audio.shape[-1] / pipeline.codec_config.hop_length)
      elif first.tempo is not None:
        frames = pipeline.loop_frames(first.tempo.samples(pipeline.sample_rate), decoding)
      else:
        frames = pipeline.frames(request.duration or pipeline.duration, decoding)  # at least one span
      width = min(frames, pipeline.window_frames(decoding))  # the pipeline's window for this piece
      if first.overlap is not None and round(first.overlap * pipeline.frame_rate) >= width:
        raise ValueError(f'overlap must be shorter than the window ({width / pipeline.frame_rate:g} s here), got '
                         f'{first.overlap:g} s')
      span_len = pipeline.lm_config.span_len
      if request.mode == 'loop' and frames < 3 * span_len:  # the seam's zone and its context on both sides
        raise ValueError(f'a loop needs at least {3 * span_len / pipeline.frame_rate:.2f} s, got '
                         f'{frames / pipeline.frame_rate:.2f} s')
      names = expand(prompts, request.seed, 1, request.duration, request.best_of)
    except ValueError as e:
      raise bad(str(e)) from e
    works = [engine.Work(one, decoding, key, request.best_of, request.scorer)
             for one, key in zip(requests, tokens, strict=True)]
    return works, names

  def _tokens(self, bad, where: str, text: str) -> int:
    """The token count of a prompt's `text` (named `where` in errors), checked against the limits."""
    options, tokenizer = self.options, self.pipeline.text_encoder.tokenizer
    chars = options.max_prompt_tokens * CHARS_PER_TOKEN
    if not text.strip():
      raise bad(f'{where}: empty prompt')
    if len(text) > chars:  # before tokenizing: its time and memory grow with the text
      raise bad(f'{where}: {len(text)} characters, at most {chars} ({options.max_prompt_tokens} tokens)')
    try:
      text.encode('utf-8')
    except UnicodeEncodeError as e:
      raise bad(f'{where}: not valid Unicode (a lone surrogate at character {e.start})') from e
    count = int(self.pipeline.text_encoder.tokenize([text])[1].sum())
    if count > options.max_prompt_tokens:
      more = 'at least ' if tokenizer.max_length is not None and count >= tokenizer.max_length else ''  # truncated
      raise bad(f'{where}: {more}{count} tokens, at most {options.max_prompt_tokens}')
    return count

  def _audio(self, upload: bytes, bad) -> np.ndarray:
    """An uploaded file -> audio [C, N] at the codec's rate and channels.

    Its header's rate, channels and length are checked before anything is decoded or resampled (a few bytes can
    declare hours at 1 Hz, which resampling would make gigabytes).
    """
    limit = self.options.max_upload_mb * 2 ** 20
    if len(upload) > limit:
      raise bad(f'the upload is {len(upload) / 2 ** 20:.3f} MB, at most {self.options.max_upload_mb:g} MB', 413)
    try:
      with soundfile.SoundFile(io.BytesIO(upload)) as file:
        rate, channels, frames = file.samplerate, file.channels, file.frames
        if not UPLOAD_RATES[0] <= rate <= UPLOAD_RATES[1]:
          raise bad(f'the upload declares {rate} Hz; {UPLOAD_RATES[0]}-{UPLOAD_RATES[1]} Hz are accepted')
        if channels > audio_io.MAX_CHANNELS:
          raise bad(f'the upload has {channels} channels, at most {audio_io.MAX_CHANNELS}')
        if frames / rate > self.max_duration:
          raise bad(f'the upload is {frames / rate:.2f} s, at most {self.max_duration:g} s')
        if frames * channels * 4 > UPLOAD_DECODE_FACTOR * max(len(upload), 2 ** 20):
          raise bad(f'the upload declares {frames} frames of {channels} channels, too many for its '
                    f'{len(upload)} bytes')
        audio = file.read(dtype='float32', always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, TypeError) as e:
      reason = str(e).rpartition(': ')[2].strip() or type(e).__name__  # soundfile names the BytesIO first
      raise bad(f'cannot decode the uploaded audio: {reason}', 400) from e
    if not audio.size or not np.all(np.isfinite(audio)):
      raise bad('the uploaded audio is empty or not finite', 400)
    try:  # [N, C] as read: channels first given explicitly, never guessed from the shape
      return convert.convert(audio.T, rate, self.pipeline.sample_rate, self.pipeline.codec_config.channels)
    except ValueError as e:
      raise bad(f'the uploaded audio: {e}') from e

  # ---- the scheduler's worker

  def _run(self, batch: list[Item]) -> None:
    """One batch: tokens together (each decoding step reported to the jobs), then each output's audio file and
    sidecar, `<job id>/<prompt slug>_<seed>.<format>` (the command line's names, `prompts.expand`)."""
    pipeline = self.pipeline
    start, compiled = time.perf_counter(), pipeline.compile_seconds
    for item in batch:
      item.job.timings.setdefault('queue_s', time.monotonic() - item.queued_at)

    def progress(done: int, total: int) -> None:
      for item in batch:
        item.job.decoded(item.index, done, total)
    outputs = engine.generate(pipeline, [item.work for item in batch], self.devices, on_progress=progress,
                              chunk=self.options.max_batch, stop=lambda: all(item.job.final for item in batch))
    compile_seconds = pipeline.compile_seconds - compiled
    if compile_seconds:
      self.metrics.compile_seconds.inc(compile_seconds)
    timings = {'compile_s': compile_seconds, 'generate_s': time.perf_counter() - start - compile_seconds}
    for item, (samples, chosen) in zip(batch, outputs, strict=True):
      job, work = item.job, item.work
      if job.final:  # cancelled while running: nothing is published
        continue
      folder, name = os.path.join(self.out, job.id), job.names[item.index]
      os.makedirs(folder, exist_ok=True)
      path = os.path.join(folder, f'{name.stem_of(chosen["seed"])}.{job.file_format}')
      writer = audio_io.AtomicAudioFile(path, pipeline.sample_rate, pipeline.codec_config.channels)
      try:
        writer.write(samples)
      except BaseException:
        writer.abort()
        raise
      record = records.finish(writer, job.file_format, False, {
          'mode': work.request.mode, 'checkpoint': self.checkpoint, 'preset': job.request['preset'],
          'decoding': dataclasses.asdict(work.decoding), 'infill': work.request.infill, 'job': job.id,
          'prompt': name.text, 'schedule': name.schedule, 'negative_prompt': work.request.negative,
          'overlap_s': work.request.overlap, 'tempo_loop': job.request['tempo'], **chosen,
          'duration_requested_s': job.request['duration'],
          'batch_size': len(batch), 'sample_rate': pipeline.sample_rate, 'versions': self.versions}, timings)
      job.timings.update(timings)
      job.output_done(item.index, path, record)
