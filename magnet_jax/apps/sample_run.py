"""The `magnet-jax` / `sample.py` command as one library function: `sample(SampleOptions(...))`.

Modes (one per run; each output file is one prompt x seed):
  text      text -> music of any --duration (windowed past the model's window), streamed into the file.
  continue  --audio-prompt FILE [--outpaint right]: the audio, then its continuation (--duration in all).
  outpaint  --audio-prompt FILE --outpaint left: new music leading into the audio (--duration in all).
  infill    --audio-prompt FILE --infill START:END: the audio with seconds [START, END) regenerated.
  loop      --loop [--audio-prompt FILE]: a seamless loop of --duration seconds (or of the audio's length).

Everything a run can fail on without the model (options, prompts, the audio prompt, the output folder and files)
is checked before the model loads. Files are written atomically (temporary file + rename), each with a JSON
sidecar: prompt, seed, every sampling parameter, checkpoint, durations, timings and versions.

Reproducibility: the same command on the same backend writes the same bytes. A file's random draws depend only on
its seed, but its conditioning also on the prompts batched with it (`batch_prompts` in the sidecar): as in
audiocraft, text is padded to the batch's longest prompt and padded positions take attention weight.
"""
import dataclasses
import functools
import importlib.metadata
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping

import jax
import numpy as np

from magnet_jax.audio import files as audio_io
from magnet_jax.audio import loudness
from magnet_jax.decoding import DecodingConfig, presets
from magnet_jax.generation import pretrained
from magnet_jax.generation.pipeline import MagnetPipeline
from magnet_jax.generation.requests import Prompt, Request, expand
from magnet_jax.io import params as params_io
from magnet_jax.training import lora as lora_lib

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class SampleOptions:
  """One sampling run (the command's flags as data)."""
  prompts: tuple[Prompt, ...]
  out: str = 'outputs'             # output folder (created).
  checkpoint: str | None = None    # exported or released folder; None: the embedded default.
  t5: str | None = None            # T5 folder for a released checkpoint (default: found beside it).
  seed: int = 0                    # sample j of a prompt uses seed + j (unless the prompt has its own seed).
  num_samples: int = 1             # files per prompt.
  duration: float | None = None    # seconds (None: the model's segment); see the modes for what it covers.
  file_format: str = 'wav'         # 'wav' | 'flac' (both 24-bit).
  normalize: bool = False          # loudness-normalise each file (`loudness.py`).
  overwrite: bool = False          # replace existing output files.
  preset: str | None = None        # `presets.PRESETS` name applied before `sampling`.
  sampling: Mapping = dataclasses.field(default_factory=dict)  # DecodingConfig overrides.
  rescorer: str | None = None      # MusicGen-style LM folder for rescoring.
  audio_prompt: str | None = None  # audio file to continue, outpaint, infill or loop.
  infill: tuple[float, float] | None = None  # seconds [start, end) of the audio prompt to regenerate.
  outpaint: str | None = None      # 'left' | 'right' of the audio prompt.
  loop: bool = False               # make seamless loops.
  overlap: float | None = None     # long form: seconds of context each window keeps (None: half a window).
  batch_size: int = 4              # files generated together.
  dtype: str | None = None         # LM compute dtype; None: bfloat16 on accelerators, float32 on CPU.
  lora: tuple[str, ...] = ()       # LoRA adapter files, 'FILE' or 'FILE:scale', merged in order.

  @property
  def mode(self) -> str:
    if self.infill is not None:
      return 'infill'
    if self.loop:
      return 'loop'
    if self.outpaint == 'left':
      return 'outpaint'
    return 'continue' if self.audio_prompt is not None else 'text'


def check_options(options: SampleOptions) -> float | None:
  """Checks what can be checked without the model; returns the audio prompt's seconds (None without one).

  Raises:
    ValueError / FileNotFoundError: the first problem, in words naming the flag.
  """
  if options.file_format not in audio_io.FORMATS:
    raise ValueError(f'--format must be one of {sorted(audio_io.FORMATS)}, got {options.file_format!r}')
  if options.duration is not None and not options.duration > 0:
    raise ValueError(f'--duration must be > 0 seconds, got {options.duration:g}')
  if options.batch_size < 1 or (options.overlap is not None and options.overlap < 0):
    raise ValueError('--batch-size must be >= 1 and --overlap >= 0')
  if sum([options.infill is not None, options.outpaint is not None, options.loop]) > 1:
    raise ValueError('--infill, --outpaint and --loop exclude each other')
  if options.outpaint not in (None, 'left', 'right'):
    raise ValueError(f"--outpaint must be 'left' or 'right', got {options.outpaint!r}")
  if options.audio_prompt is None:
    if options.infill is not None or options.outpaint is not None:
      raise ValueError('--infill and --outpaint need --audio-prompt FILE')
    return None
  seconds = audio_io.duration(options.audio_prompt)
  if options.infill is not None:
    start, end = options.infill
    if not 0 <= start < end <= seconds:
      raise ValueError(f'--infill {start:g}:{end:g} is outside the audio prompt (0-{seconds:.2f} s) or empty')
  return seconds


def check_durations(requests: list[Request], mode: str, audio_seconds: float | None,
                    default: float | None = None) -> None:
  """Per-file durations against the mode: none for infill or looping given audio, longer than the audio to
  continue or outpaint (files without a duration of their own are checked once the model's `default` is known)."""
  for request in requests:
    if request.duration is not None and (mode == 'infill' or (mode == 'loop' and audio_seconds is not None)):
      raise ValueError(f'--duration does not apply to {mode} with --audio-prompt: the output keeps the audio\'s length')
    total = request.duration or default
    if mode in ('continue', 'outpaint') and total is not None and total <= audio_seconds:
      raise ValueError(f'--duration ({total:g} s, the whole output) must exceed the audio prompt '
                       f'({audio_seconds:.2f} s) to {mode} it')


def output_paths(out: str, requests: list[Request], file_format: str, overwrite: bool) -> list[str]:
  """The audio files (sidecars: same stem, .json), after checking that `out` is a writable folder and that no
  file would be replaced without `overwrite`.

  Raises:
    PermissionError: `out` cannot be created or written; FileExistsError: an output exists.
  """
  try:
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryFile(dir=out):
      pass
  except OSError as e:
    raise PermissionError(f'--out {out} is not a writable folder ({e.strerror or e})') from e
  paths = [os.path.join(out, f'{r.stem}.{file_format}') for r in requests]
  existing = [p for path in paths for p in (path, _sidecar(path)) if os.path.exists(p)]
  if existing and not overwrite:
    raise FileExistsError(f'{existing[0]} already exists ({len(existing)} output files do): pass --overwrite to '
                          'replace them, or another --out or --seed')
  return paths


def _sidecar(path: str) -> str:
  return os.path.splitext(path)[0] + '.json'


def _versions() -> dict:
  versions = {name: importlib.metadata.version(name) for name in ('magnet-jax', 'jax', 'jaxlib', 'flax', 'numpy')}
  return {**versions, 'python': platform.python_version(), 'backend': jax.default_backend(),
          'device': jax.devices()[0].device_kind}


def _load(options: SampleOptions, log: Log) -> tuple[MagnetPipeline, float]:
  name = options.checkpoint or f'the embedded default ({pretrained.EMBEDDED_DIR})'
  log(f'loading {name}')
  start = time.perf_counter()
  kwargs = {key: value for key, value in (('t5', options.t5), ('dtype', options.dtype)) if value is not None}
  adapters = [lora_lib.parse_spec(spec) for spec in options.lora]
  pipeline = pretrained.load(options.checkpoint, lora=[f for f, _ in adapters], lora_scale=[s for _, s in adapters],
                             **kwargs)
  if options.rescorer is not None:
    config, params = pretrained.load_rescorer(options.rescorer)
    pipeline = dataclasses.replace(pipeline, rescorer_config=config, rescorer_params=params)
  seconds = time.perf_counter() - start
  lm = pipeline.lm_config
  log(f'loaded in {seconds:.1f} s: LM {lm.dim}-d x {lm.num_layers} layers ({lm.dtype}), {lm.segment_duration:g} s '
      f'window, codec {pipeline.sample_rate} Hz')
  return pipeline, seconds


def _batches(requests: list[Request], size: int) -> list[list[Request]]:
  """Requests of equal duration together, at most `size` per batch, in order of first appearance."""
  groups: dict = {}
  for request in requests:
    groups.setdefault(request.duration, []).append(request)
  return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]


def _audio(pipeline: MagnetPipeline, options: SampleOptions, batch: list[Request], prompt_audio,
           decoding: DecodingConfig,
           progress) -> Iterator[np.ndarray]:
  """The batch's audio [B, C, n], in one chunk or (text, continue) streamed window by window."""
  texts, seeds, duration = [r.text for r in batch], [r.seed for r in batch], batch[0].duration
  audio, rate = prompt_audio if prompt_audio is not None else (None, None)
  mode = options.mode
  if mode in ('text', 'continue'):
    prompt = None if audio is None else pipeline.encode(pipeline.prepare_audio(audio, rate, len(texts)))
    yield from pipeline.stream(texts, duration, seeds, prompt, options.overlap, progress, decoding=decoding)
  elif mode == 'outpaint':
    yield pipeline.outpaint(audio, rate, texts, 'left', duration or pipeline.duration, seeds, decoding=decoding)
  elif mode == 'infill':
    yield pipeline.infill(audio, rate, texts, *options.infill, seeds, decoding=decoding)
  else:
    yield pipeline.generate_loop(texts, duration, seeds, audio, rate, decoding=decoding)


def _window_done(log: Log, done: int, total: int) -> None:
  if total > 1:
    log(f'  window {done}/{total}')


def sample(options: SampleOptions, log: Log = print) -> list[dict]:
  """Runs `options`: checks, loads the model, generates and writes every file, reporting progress to `log`.

  Returns:
    One record per file (its sidecar's content plus 'path').

  Raises:
    ValueError, FileNotFoundError, FileExistsError, PermissionError, CheckpointError: a problem with the options,
      the inputs or the output location (all found before the model loads, but for checkpoint problems and
      durations that need the model's default), or FloatingPointError: the LM produced NaN/inf.
  """
  audio_seconds = check_options(options)
  requests = expand(list(options.prompts), options.seed, options.num_samples, options.duration)
  check_durations(requests, options.mode, audio_seconds)
  paths = dict(zip(requests, output_paths(options.out, requests, options.file_format, options.overwrite),
                   strict=True))
  pipeline, load_seconds = _load(options, log)
  check_durations(requests, options.mode, audio_seconds, pipeline.duration)
  decoding = pipeline.decoding_with(**{**presets.overrides(options.preset, pipeline.lm_config.n_q,
                                                           pipeline.rescorer_params is not None),
                                       **options.sampling})
  cache = jax.config.jax_compilation_cache_dir
  pipeline.on_compile = lambda what: log(f'compiling (first run only{f"; XLA cache {cache}" if cache else ""}): {what}')
  prompt_audio = None if options.audio_prompt is None else audio_io.read(options.audio_prompt)
  common = {'mode': options.mode, 'checkpoint': os.path.abspath(options.checkpoint or pretrained.EMBEDDED_DIR),
            'preset': options.preset, 'decoding': dataclasses.asdict(decoding), 'overlap_s': options.overlap,
            'audio_prompt': options.audio_prompt, 'infill': options.infill, 'outpaint': options.outpaint,
            'sample_rate': pipeline.sample_rate, 'versions': _versions()}
  records, batches = [], _batches(requests, options.batch_size)
  totals = {'compile': 0.0, 'generate': 0.0, 'audio': 0.0}
  for number, batch in enumerate(batches, 1):
    log(f'batch {number}/{len(batches)}: {len(batch)} file(s), {options.mode}')
    start, compiled = time.perf_counter(), pipeline.compile_seconds
    writers = [audio_io.AtomicAudioFile(paths[r], pipeline.sample_rate, pipeline.codec_config.channels)
               for r in batch]
    try:
      for chunk in _audio(pipeline, options, batch, prompt_audio, decoding,
                          functools.partial(_window_done, log)):
        for writer, row in zip(writers, chunk, strict=True):
          writer.write(row)
    except BaseException:
      for writer in writers:
        writer.abort()
      raise
    compile_seconds = pipeline.compile_seconds - compiled
    generate_seconds = time.perf_counter() - start - compile_seconds
    for request, writer in zip(batch, writers, strict=True):
      written = writer.finish(options.file_format, loudness.normalize if options.normalize else None)
      seconds = writer.samples / pipeline.sample_rate
      record = {**common, 'prompt': request.text, 'seed': request.seed, 'duration_requested_s': request.duration,
                'audio_s': seconds, **written, 'batch_prompts': [r.text for r in batch],
                'timings': {'load_s': load_seconds, 'compile_s': compile_seconds, 'generate_s': generate_seconds}}
      params_io.save_json(_sidecar(paths[request]), record)
      records.append({**record, 'path': paths[request]})
      totals['audio'] += seconds
      log(f'  wrote {paths[request]} ({seconds:.2f} s{", clipped" if written["clipped"] else ""})')
    totals['compile'] += compile_seconds
    totals['generate'] += generate_seconds
  log(f'done: {len(records)} file(s) in {options.out}; load {load_seconds:.1f} s, compile {totals["compile"]:.1f} s, '
      f'generate {totals["generate"]:.1f} s ({totals["generate"] / totals["audio"]:.3f} s per second of audio)')
  return records
