"""The `magnet-jax` / `sample.py` command as one library function: `sample(SampleOptions(...))`: prompts -> files.

Modes (one per run, `generation.request`; each output file is one prompt x seed):
  text          text -> music of any --duration (windowed past the model's window), streamed into the file.
  continuation  --audio-prompt FILE [--outpaint right]: the audio, then its continuation (--duration in all).
  outpaint      --audio-prompt FILE --outpaint left: new music leading into the audio (--duration in all).
  infill        --audio-prompt FILE --infill START:END: the audio with seconds [START, END) regenerated.
  loop          --loop [--audio-prompt FILE]: a seamless loop of --duration seconds (or of the audio's length), or
                of exactly --bars bars at --bpm (`request.Tempo`); --loop-count N writes it N times.
A file whose length a duration sets lasts it to the sample (round(duration * rate) samples); its sidecar records
the duration requested (the model's default where none was given).

Prompts may be schedules (text changing over time), carry a negative prompt (guidance steers away from it), and
each file may be the best of --best-of N candidates, ranked by a scorer (`generation.best_of`; every candidate's
score goes in the sidecar, and the file is named after the chosen candidate's seed). --step-progress reports every
decoding step and lets `cancel` stop a run between steps, nothing of the batch written.

Everything a run can fail on without the model (options, prompts, the audio prompt, each output's request, the
output folder and files) is checked before the model loads. Files are written atomically (temporary file +
rename), each with a JSON sidecar: prompt, seed, every sampling parameter, checkpoint, durations, timings and
versions.

An audio file and its sidecar are one unit: both are written to temporary files first, then the old sidecar is
removed, the audio renamed into place and the sidecar last, so an audio file is only ever beside its own sidecar
(an interruption between the renames leaves an audio file without one: not a finished output). A run claims its
output names first (`files.Claim`: another process writing the same names is one error; best-of claims every
candidate's name) and removes the temporary files of dead writers (SIGKILL, power loss) from --out.

Reproducibility: the same command on the same backend writes the same bytes. A file's random draws depend only on
its seed, but its conditioning also on the prompts batched with it (`batch_prompts` in the sidecar): as in
audiocraft, text is padded to the batch's longest prompt and padded positions take attention weight.
"""
import dataclasses
import functools
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping

import jax
import numpy as np

from magnet_jax.audio import files as audio_io
from magnet_jax.decoding import DecodingConfig, presets
from magnet_jax.generation import best_of as best_of_lib
from magnet_jax.generation import lora as lora_lib
from magnet_jax.generation import pretrained, records
from magnet_jax.generation import request as request_lib
from magnet_jax.generation.pipeline import MagnetPipeline
from magnet_jax.generation.prompts import Output, Prompt, expand
from magnet_jax.generation.request import Request, Tempo
from magnet_jax.io import files

Log = Callable[[str], None]
MAX_DURATION = 3600.0  # default cap on requested durations (seconds): a typo like 1e6 is refused, not run for days


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
  max_duration: float = MAX_DURATION  # longest duration accepted (--duration and per-prompt durations), seconds.
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
  batch_size: int = 4              # files generated together (best-of: candidates generated together).
  dtype: str | None = None         # LM compute dtype; None: bfloat16 on accelerators, float32 on CPU.
  negative: str | None = None      # negative prompt of every prompt without its own.
  bpm: float | None = None         # --loop of exactly `bars` bars at this tempo.
  bars: int | None = None
  beats_per_bar: int = 4
  loop_count: int = 1              # the loop written this many times in a row.
  best_of: int = 1                 # candidates per file; the scorer's best is written.
  scorer: str = 'stats'            # `best_of.SCORERS` name (NAME or NAME:ARGUMENT).
  step_progress: bool = False      # report every decoding step (the progress variant of the program).
  lora: tuple[str, ...] = ()       # LoRA adapter files, 'FILE' or 'FILE:scale', merged in order.

  @property
  def mode(self) -> str:
    """The `request.MODES` name the flags ask for."""
    if self.infill is not None:
      return 'infill'
    if self.loop:
      return 'loop'
    if self.outpaint == 'left':
      return 'outpaint'
    return 'continuation' if self.audio_prompt is not None else 'text'


AudioPrompt = tuple[np.ndarray, int] | None  # (audio [C, N], sample rate) of --audio-prompt


def check_options(options: SampleOptions) -> AudioPrompt:
  """Checks what can be checked without the model (the flags, and the request every output shares); returns the
  audio prompt (None without one).

  Raises:
    ValueError / FileNotFoundError: the first problem, in words naming the flag.
  """
  if options.file_format not in audio_io.FORMATS:
    raise ValueError(f'--format must be one of {sorted(audio_io.FORMATS)}, got {options.file_format!r}')
  if not 0 < options.max_duration < math.inf:
    raise ValueError(f'--max-duration must be > 0 seconds and finite, got {options.max_duration:g}')
  if options.batch_size < 1:
    raise ValueError(f'--batch-size must be >= 1, got {options.batch_size}')
  if sum([options.infill is not None, options.outpaint is not None, options.loop]) > 1:
    raise ValueError('--infill, --outpaint and --loop exclude each other')
  if options.outpaint not in (None, 'left', 'right'):
    raise ValueError(f"--outpaint must be 'left' or 'right', got {options.outpaint!r}")
  if (options.bpm is None) != (options.bars is None):
    raise ValueError('--bpm and --bars go together')
  if options.bpm is not None:
    seconds = Tempo(options.bpm, options.bars, options.beats_per_bar).seconds  # Tempo checks the values
    if not (math.isfinite(options.bpm) and 0 < seconds <= options.max_duration):
      raise ValueError(f'--bpm {options.bpm:g} --bars {options.bars} make a {seconds:g} s loop: it must be finite, '
                       f'> 0 and at most --max-duration ({options.max_duration:g} s)')
  if options.loop_count < 1 or (options.loop_count > 1 and not options.loop):
    raise ValueError(f'--loop-count must be >= 1 and needs --loop, got {options.loop_count}')
  best_of_lib.check(options.best_of, options.scorer)
  if options.negative is not None and not options.negative.strip():
    raise ValueError(f'empty --negative-prompt {options.negative!r}: it would guide away from no text, as without '
                     'one; leave it out for that')
  if options.audio_prompt is None and (options.infill is not None or options.outpaint is not None):
    raise ValueError('--infill and --outpaint need --audio-prompt FILE')
  audio = None
  if options.audio_prompt is not None:
    audio_io.duration(options.audio_prompt)  # a missing or unreadable file: one line naming it
    audio_io.check_finite(options.audio_prompt)
    audio = audio_io.read(options.audio_prompt)
  request_lib.check(_request(options, Output(None, options.seed, options.duration, ('',)), audio),
                    options.max_duration)
  return audio


def _request(options: SampleOptions, output: Output, audio: AudioPrompt) -> Request:
  """The generation request of one output file."""
  samples, rate = audio if audio is not None else (None, None)
  tempo = None if options.bpm is None else Tempo(options.bpm, options.bars, options.beats_per_bar)
  return Request(output.description, output.seed, options.mode, output.duration, samples, rate, options.infill,
                 output.negative or options.negative, options.overlap, tempo)


def check_requests(options: SampleOptions, outputs: list[Output], audio: AudioPrompt,
                   default: float | None = None) -> list[Request]:
  """Each output's request, checked (`request.check`; files without a duration of their own are checked again
  once the model's `default` is known); an error names the output's prompt."""
  requests = []
  for output in outputs:
    requests.append(_request(options, output, audio))
    try:
      request_lib.check(requests[-1], options.max_duration, default)
    except ValueError as e:
      raise ValueError(f'prompt {output.text!r}: {e}') from e
  return requests


def output_paths(out: str, outputs: list[Output], file_format: str, overwrite: bool
                 ) -> tuple[list[dict[int, str]], list[files.Claim]]:
  """Each output's audio file by candidate seed (sidecars: same stem, .json) and this process's claims on them,
  after checking that `out` is a writable folder, that no other process writes these names and that no file would
  be replaced without `overwrite`. Release the claims when done.

  Raises:
    PermissionError: `out` cannot be created or written; FileExistsError: an output exists or is being written.
  """
  files.check_writable_folder(out, '--out')
  paths = [{output.seed + c: os.path.join(out, f'{stem}.{file_format}') for c, stem in enumerate(output.stems)}
           for output in outputs]
  claims: list[files.Claim] = []
  try:
    claims.extend(files.Claim(path) for candidates in paths for path in candidates.values())
    existing = [p for candidates in paths for path in candidates.values()
                for p in (path, records.sidecar_path(path)) if os.path.exists(p)]
    if existing and not overwrite:
      raise FileExistsError(f'{existing[0]} already exists ({len(existing)} output files do): pass --overwrite to '
                            'replace them, or another --out or --seed')
  except BaseException:
    _release(claims)
    raise
  return paths, claims


def _release(claims: list[files.Claim]) -> None:
  for claim in claims:
    claim.release()


def _load(options: SampleOptions, log: Log) -> tuple[MagnetPipeline, float]:
  name = options.checkpoint or f'the embedded default ({pretrained.EMBEDDED_DIR})'
  adapters = [lora_lib.parse_spec(spec) for spec in options.lora]
  log(f'loading {name}' + ''.join(f' + LoRA {file} (scale {scale:g})' for file, scale in adapters))
  start = time.perf_counter()
  kwargs = {key: value for key, value in (('t5', options.t5), ('dtype', options.dtype)) if value is not None}
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


def _batches(indices: list[int], requests: list[Request], size: int) -> list[list[int]]:
  """Output indices of one request key together, at most `size` per batch, in order of first appearance."""
  groups: dict = {}
  for index in indices:
    groups.setdefault(requests[index].key, []).append(index)
  return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]


def _window_done(log: Log, done: int, total: int) -> None:
  if total > 1:
    log(f'  window {done}/{total}')


def _step_done(log: Log, cancel: threading.Event | None, done: int, total: int) -> bool:
  """Logs every tenth of the steps (and the last); True (stop) once `cancel` is set."""
  if done == total or done % max(total // 10, 1) == 0:
    log(f'  step {done}/{total}')
  return cancel is not None and cancel.is_set()


def _chunks(pipeline: MagnetPipeline, options: SampleOptions, requests: list[Request], decoding: DecodingConfig,
            progress, on_step) -> Iterator[tuple[np.ndarray, list[dict]]]:
  """The batch's audio [B, C, n] with each file's seed record: streamed (text, continuation) or, best-of, the
  chosen candidates in one chunk."""
  if options.best_of > 1:
    yield best_of_lib.generate(pipeline, requests, options.best_of, options.scorer, options.batch_size, decoding,
                               progress=progress, on_step=on_step)
    return
  chosen = [{'seed': r.seed} for r in requests]
  for chunk in request_lib.generate(pipeline, requests, decoding, progress=progress, on_step=on_step):
    yield (np.tile(chunk, options.loop_count) if options.loop else chunk), chosen


def sample(options: SampleOptions, log: Log = print, cancel: threading.Event | None = None) -> list[dict]:
  """Runs `options`: checks, loads the model, generates and writes every file, reporting progress to `log`.

  With `options.step_progress`, setting `cancel` stops the generation at its next decoding step: `Cancelled` is
  raised and the batch's files are not written (those of earlier batches are).

  Returns:
    One record per file (its sidecar's content plus 'path').

  Raises:
    ValueError, FileNotFoundError, FileExistsError, PermissionError, CheckpointError: a problem with the options,
      the inputs or the output location (all found before the model loads, but for checkpoint problems and
      durations that need the model's default), FileExistsError also when another process writes the same names,
      OSError: an output could not be written (e.g. 'no space left on device writing PATH'), or
      FloatingPointError: the LM produced NaN/inf.
  """
  audio = check_options(options)
  outputs = expand(list(options.prompts), options.seed, options.num_samples, options.duration, options.best_of)
  check_requests(options, outputs, audio)
  paths, claims = output_paths(options.out, outputs, options.file_format, options.overwrite)
  try:
    stale = files.remove_stale_temporaries(options.out)
    if stale:
      log(f'removed {len(stale)} temporary file(s) of interrupted runs from {options.out}')
    return _sample(options, outputs, paths, audio, log, cancel)
  finally:
    _release(claims)


def _sample(options: SampleOptions, outputs: list[Output], paths: list[dict[int, str]], audio: AudioPrompt,
            log: Log, cancel: threading.Event | None) -> list[dict]:
  """`sample` once the outputs are claimed: loads the model, generates and writes every file."""
  pipeline, load_seconds = _load(options, log)
  requests = check_requests(options, outputs, audio, pipeline.duration)
  decoding = pipeline.decoding_with(**{**presets.overrides(options.preset, pipeline.lm_config.n_q,
                                                           pipeline.rescorer_params is not None),
                                       **options.sampling})
  cache = jax.config.jax_compilation_cache_dir
  pipeline.on_compile = lambda what: log(f'compiling (first run only{f"; XLA cache {cache}" if cache else ""}): {what}')
  common = {'mode': options.mode, 'checkpoint': os.path.abspath(options.checkpoint or pretrained.EMBEDDED_DIR),
            'preset': options.preset, 'decoding': dataclasses.asdict(decoding), 'overlap_s': options.overlap,
            'audio_prompt': options.audio_prompt, 'infill': options.infill, 'outpaint': options.outpaint,
            'sample_rate': pipeline.sample_rate, 'versions': records.versions(),
            'lora': records.adapters([lora_lib.parse_spec(spec) for spec in options.lora]),
            'options': records.run_options(options)}
  if options.bpm is not None:
    common['tempo_loop'] = {'bpm': options.bpm, 'bars': options.bars, 'beats_per_bar': options.beats_per_bar,
                            'loop_samples': requests[0].tempo.samples(pipeline.sample_rate)}
  if options.loop:
    common['loop_count'] = options.loop_count
  on_step = functools.partial(_step_done, log, cancel) if options.step_progress else None
  # Best-of: a file's candidates run together (`batch_size` candidates at a time), scored before anything is written.
  batches = _batches(list(range(len(outputs))), requests, max(options.batch_size // options.best_of, 1))
  totals, records_out = {'compile': 0.0, 'generate': 0.0, 'audio': 0.0}, []
  for number, batch in enumerate(batches, 1):
    log(f'batch {number}/{len(batches)}: {len(batch)} file(s), {options.mode}')
    start, compiled = time.perf_counter(), pipeline.compile_seconds
    writers, chosen = [], []
    try:  # an error or an interruption anywhere in the batch leaves none of its temporary files behind
      chunks = _chunks(pipeline, options, [requests[i] for i in batch], decoding,
                       functools.partial(_window_done, log), on_step)
      for chunk, chosen in chunks:
        if not writers:  # the files are named after the seeds they keep, known with the first chunk
          writers.extend(audio_io.AtomicAudioFile(paths[i][c['seed']], pipeline.sample_rate,
                                                  pipeline.codec_config.channels)
                         for i, c in zip(batch, chosen, strict=True))
        for writer, row in zip(writers, chunk, strict=True):
          writer.write(row)
      compile_seconds = pipeline.compile_seconds - compiled
      generate_seconds = time.perf_counter() - start - compile_seconds
      for i, writer, seed_record in zip(batch, writers, chosen, strict=True):
        output = outputs[i]
        record = records.finish(
            writer, options.file_format, options.normalize,
            {**common, 'prompt': output.text, 'schedule': output.schedule,
             'negative_prompt': output.negative or options.negative, **seed_record,
             'duration_requested_s': request_lib.requested_duration(requests[i], pipeline.duration),
             'batch_prompts': [outputs[j].text for j in batch],
             'batch': records.batch([outputs[j] for j in batch]), 'batch_index': batch.index(i)},
            {'load_s': load_seconds, 'compile_s': compile_seconds, 'generate_s': generate_seconds})
        records_out.append({**record, 'path': writer.path})
        totals['audio'] += record['audio_s']
        log(f'  wrote {writer.path} ({record["audio_s"]:.2f} s{", clipped" if record["clipped"] else ""})')
    except BaseException:
      for writer in writers:
        writer.abort()
      raise
    totals['compile'] += compile_seconds
    totals['generate'] += generate_seconds
  log(f'done: {len(records_out)} file(s) in {options.out}; load {load_seconds:.1f} s, compile '
      f'{totals["compile"]:.1f} s, generate {totals["generate"]:.1f} s '
      f'({totals["generate"] / totals["audio"]:.3f} s per second of audio)')
  return records_out


def replay_options(sidecar: str, out: str) -> tuple[SampleOptions, int]:
  """The run that regenerates the file of `sidecar` bit for bit (on the same backend): its batch (whose prompts
  condition it), its seeds, every decoding value and its adapters (checked unchanged), written to `out`; and the
  file's index in that batch.

  Raises:
    FileNotFoundError / ValueError: no such sidecar, one without what a replay needs (written before replays
      existed), or an adapter that is gone or changed.
  """
  if not os.path.isfile(sidecar):
    raise FileNotFoundError(f'--replay: no such sidecar {sidecar}')
  record = records.read_sidecar(sidecar) or {}
  missing = sorted({'options', 'batch', 'batch_index', 'decoding', 'lora'} - set(record))
  if missing:
    raise ValueError(f'--replay: {sidecar} lacks {missing} (written by an older magnet-jax); regenerate it with its '
                     'prompt and seed')
  stored = dict(record['options'])
  if stored.get('infill') is not None:
    stored['infill'] = tuple(stored['infill'])
  prompts = tuple(Prompt.scheduled(entry['schedule'], seed=entry['seed'], duration=entry['duration'],
                                   negative=entry['negative']) if entry['schedule'] is not None
                  else Prompt(entry['text'], seed=entry['seed'], duration=entry['duration'], negative=entry['negative'])
                  for entry in record['batch'])
  options = SampleOptions(**{**stored, 'prompts': prompts, 'num_samples': 1, 'out': out, 'overwrite': False,
                             'sampling': record['decoding'], 'lora': tuple(records.check_adapters(record['lora']))})
  return options, int(record['batch_index'])


def replay(sidecar: str, out: str | None = None, log: Log = print) -> dict:
  """Regenerates the file of `sidecar` into `out` (default: a folder 'replay' beside it) and compares it with the
  original sample for sample.

  Returns:
    The regenerated file's record, plus 'path' and 'identical' (None when the original audio is not there).
  """
  out = out or os.path.join(os.path.dirname(os.path.abspath(sidecar)), 'replay')
  options, index = replay_options(sidecar, out)
  record = sample(options, log)[index]
  original = os.path.splitext(sidecar)[0] + os.path.splitext(record['path'])[1]
  identical = None
  if os.path.isfile(original):
    identical = bool(np.array_equal(audio_io.read(original)[0], audio_io.read(record['path'])[0]))
    log(f'replayed {original} as {record["path"]}: '
        + ('identical sample for sample' if identical else 'DIFFERENT audio (another backend or code version?)'))
  return {**record, 'identical': identical}
