"""`magnet-jax serve`: flags -> `ServeOptions` -> `serving.app.serve` (the HTTP API, the web page, metrics).

  magnet-jax serve                                  # the embedded default model on http://127.0.0.1:8000
  magnet-jax serve --checkpoint DIR --host 0.0.0.0 --port 8080 --max-batch 16 --warmup 5,10

See docs/serving.md.
"""
from absl import flags, logging

from magnet_jax.apps import runner as cli
from magnet_jax.generation import compile_cache
from magnet_jax.parallel.sharding import PRESETS
from magnet_jax.serving.service import ServeOptions

DEFAULTS = ServeOptions()
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Exported or released MAGNeT folder (default: the embedded '
                                  'default model).')
_HOST = flags.DEFINE_string('host', DEFAULTS.host, 'Address to listen on.')
_PORT = flags.DEFINE_integer('port', DEFAULTS.port, 'Port to listen on.')
_OUT = flags.DEFINE_string('out', None, 'Folder for generated files and sidecars (default: a new temporary one).')
_MAX_BATCH = flags.DEFINE_integer('max-batch', DEFAULTS.max_batch, 'Outputs per call of the compiled program.')
_MAX_WAIT = flags.DEFINE_float('max-wait', DEFAULTS.max_wait, 'Seconds a request waits for batch mates.')
_MAX_QUEUE = flags.DEFINE_integer('max-queue', DEFAULTS.max_queue, 'Queued outputs; more are refused (429).')
_MAX_PROMPTS = flags.DEFINE_integer('max-prompts', DEFAULTS.max_prompts, 'Prompts per request.')
_MAX_DURATION = flags.DEFINE_float('max-duration', None, 'Seconds per output (default: the model\'s window).')
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
      sharding=_SHARDING.value, model_parallel=_MODEL_PARALLEL.value, drain=_DRAIN.value, dtype=_DTYPE.value)


def _main() -> None:
  from magnet_jax.serving.app import serve  # FastAPI / uvicorn: the `serve` extra
  logging.set_verbosity(logging.WARNING)
  compile_cache.enable()
  serve(options_from_flags(), log=lambda line: print(line, flush=True))


def main() -> None:
  cli.run('magnet-jax serve', _main)
