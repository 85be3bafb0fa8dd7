"""`magnet-jax serve`: flags -> `ServeOptions` -> `serving.app.serve` (the HTTP API, the web page, metrics).

  magnet-jax serve                                  # the embedded default model on http://127.0.0.1:8000
  magnet-jax serve --checkpoint DIR --host 0.0.0.0 --port 8080 --max-batch 16 --warmup 5,10

See docs/serving.md.
"""
import os

from absl import flags, logging

from magnet_jax.apps import runner as cli
from magnet_jax.generation import compile_cache
from magnet_jax.parallel.sharding import PRESETS
from magnet_jax.serving.service import DEFAULT_MAX_DURATION, ServeOptions

DEFAULTS = ServeOptions()
TOKEN_ENV = 'MAGNET_JAX_TOKEN'
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Exported or released MAGNeT folder (default: the embedded '
                                  'default model).')
_HOST = flags.DEFINE_string('host', DEFAULTS.host, 'Address to listen on.')
_PORT = flags.DEFINE_integer('port', DEFAULTS.port, 'Port to listen on.')
_OUT = flags.DEFINE_string('out', None, 'Folder for generated files and sidecars, <job id>/<prompt>_<seed>.wav '
                           '(default: a temporary folder, removed at shutdown).')
flags.DEFINE_alias('outputs', 'out')
_MAX_BATCH = flags.DEFINE_integer('max-batch', DEFAULTS.max_batch, 'Outputs per call of the compiled program.')
_MAX_WAIT = flags.DEFINE_float('max-wait', DEFAULTS.max_wait, 'Seconds a request waits for batch mates.')
_MAX_QUEUE = flags.DEFINE_integer('max-queue', DEFAULTS.max_queue, 'Queued outputs; more are refused (429).')
_MAX_PROMPTS = flags.DEFINE_integer('max-prompts', DEFAULTS.max_prompts, 'Prompts per request.')
_MAX_DURATION = flags.DEFINE_float('max-duration', None, 'Seconds per output and per uploaded file (default: '
                                   f'{DEFAULT_MAX_DURATION:g}, or the model\'s window if longer).')
_MAX_PROMPT_TOKENS = flags.DEFINE_integer('max-prompt-tokens', DEFAULTS.max_prompt_tokens,
                                          'Tokens per prompt (text is padded to this length).')
_MAX_UPLOAD_MB = flags.DEFINE_float('max-upload-mb', DEFAULTS.max_upload_mb, 'Largest uploaded audio file.')
_DEADLINE = flags.DEFINE_float('deadline', DEFAULTS.deadline, 'Default seconds within which a job must start.')
_WARMUP = flags.DEFINE_list('warmup', None, 'Durations (seconds) compiled for every batch size at start-up '
                            '(default: the model\'s default duration; "none": compile on first use).')
_SHARDING = flags.DEFINE_enum('sharding', DEFAULTS.sharding, sorted(PRESETS), 'Layout of the LM\'s parameters over '
                              'the local devices (the batch is always split over the data axis).')
_MODEL_PARALLEL = flags.DEFINE_integer('model-parallel', DEFAULTS.model_parallel, 'Devices per model replica '
                                       '(tensor parallel; with --sharding tensor_parallel).')
_DRAIN = flags.DEFINE_float('drain', DEFAULTS.drain, 'Seconds SIGTERM / Ctrl-C waits for queued jobs.')
_TOKEN = flags.DEFINE_string('token', None, f'Bearer token every API request must carry (default: ${TOKEN_ENV} if set, '
                             'else none); the page takes it once as /?token=TOKEN.')
_ALLOW_HOST = flags.DEFINE_list('allow-host', [], 'Host names the server answers to besides IP addresses, '
                                'localhost and this machine\'s names ("*": any; refuses DNS rebinding otherwise).')
_ALLOW_ORIGIN = flags.DEFINE_list('allow-origin', [], 'Web origins (scheme://host:port) whose pages may call the API '
                                  'besides the server\'s own page.')
_MAX_CONNECTIONS = flags.DEFINE_integer('max-connections', DEFAULTS.max_connections, 'Open connections and tasks; '
                                        'more are answered 503.')
_HEADER_TIMEOUT = flags.DEFINE_float('header-timeout', DEFAULTS.header_timeout, 'Seconds a new connection has to '
                                     'send its request headers.')
_KEEP_ALIVE = flags.DEFINE_float('keep-alive', DEFAULTS.keep_alive, 'Seconds an idle connection stays open.')
_LIVE_STREAMS = flags.DEFINE_integer('live-streams', DEFAULTS.live_streams, 'Live listeners at once (/live); more '
                                     'are refused (0: no live music).')
_LIVE_AHEAD = flags.DEFINE_integer('live-ahead', DEFAULTS.live_ahead, 'Live chunks sent beyond the one a listener '
                                   'plays (the latency of a prompt change grows with it).')
_LIVE_ACK_TIMEOUT = flags.DEFINE_float('live-ack-timeout', DEFAULTS.live_ack_timeout, 'Seconds a live listener may '
                                       'go without acknowledging a chunk while one is due (longer than a chunk).')
_DTYPE = flags.DEFINE_enum('dtype', None, ['float32', 'bfloat16', 'float16'], 'LM compute dtype (default: bfloat16 '
                           'on GPU/TPU, float32 on CPU).')


def warmup_durations(values: list[str] | None) -> tuple[float, ...] | None:
  if values is None:
    return None
  if values == ['none']:
    return ()
  try:
    return tuple(float(v) for v in values)
  except ValueError as e:
    raise ValueError(f'--warmup expects seconds separated by commas or "none", got {",".join(values)!r}') from e


def options_from_flags() -> ServeOptions:
  return ServeOptions(
      checkpoint=_CHECKPOINT.value, host=_HOST.value, port=_PORT.value, out=_OUT.value, max_batch=_MAX_BATCH.value,
      max_wait=_MAX_WAIT.value, max_queue=_MAX_QUEUE.value, max_prompts=_MAX_PROMPTS.value,
      max_duration=_MAX_DURATION.value, max_prompt_tokens=_MAX_PROMPT_TOKENS.value,
      max_upload_mb=_MAX_UPLOAD_MB.value, deadline=_DEADLINE.value, warmup=warmup_durations(_WARMUP.value),
      sharding=_SHARDING.value, model_parallel=_MODEL_PARALLEL.value, drain=_DRAIN.value, dtype=_DTYPE.value,
      token=_TOKEN.value if _TOKEN.value is not None else os.environ.get(TOKEN_ENV),
      allow_hosts=tuple(_ALLOW_HOST.value), allow_origins=tuple(_ALLOW_ORIGIN.value),
      max_connections=_MAX_CONNECTIONS.value, header_timeout=_HEADER_TIMEOUT.value, keep_alive=_KEEP_ALIVE.value,
      live_streams=_LIVE_STREAMS.value, live_ahead=_LIVE_AHEAD.value, live_ack_timeout=_LIVE_ACK_TIMEOUT.value)


def _main() -> None:
  from magnet_jax.serving.app import serve  # FastAPI / uvicorn: the `serve` extra
  logging.set_verbosity(logging.WARNING)
  options = options_from_flags()  # every limit checked before anything loads
  compile_cache.enable()
  serve(options, log=lambda line: print(line, flush=True))


def main() -> None:
  cli.run('magnet-jax serve', _main)
