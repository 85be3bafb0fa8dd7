"""The `magnet-jax` console script and `sample.py`: flags -> `SampleOptions` -> `sample`.

  magnet-jax --prompt "slow solo piano in A minor" --prompt "fast drum groove" --out outputs
  magnet-jax --prompts-file prompts.jsonl --num-samples 2 --preset balanced --duration 30 --format flac --normalize
  magnet-jax --prompt "jazz trio" --audio-prompt take.wav --infill 4.0:6.5
  magnet-jax --schedule --prompt "0:ambient pads" --prompt "30:add a slow drum groove" --duration 60
  magnet-jax --prompt "funk drum loop" --loop --bpm 120 --bars 4 --loop-count 4 --negative-prompt "noise"
  magnet-jax --replay outputs/funk-drum-loop_0.json   # regenerates that file bit for bit (into outputs/replay)

Every DecodingConfig field is a flag of the same name with dashes (--decoding-steps 20,10,10,10, --top-p 0.9, ...);
set ones override --preset, which overrides the checkpoint's defaults. See docs/sampling.md.
"""
import os
import signal
import sys
import threading

from absl import flags, logging

from magnet_jax.apps import runner as cli
from magnet_jax.audio import files as audio
from magnet_jax.decoding import presets
from magnet_jax.decoding.config import FIELDS, help_text, parse_overrides
from magnet_jax.evaluation import prompt_following  # noqa: F401 (registers the best-of scorers)
from magnet_jax.generation import best_of, compile_cache, prompt_schedule
from magnet_jax.generation.prompts import Prompt, read_prompts_file
from magnet_jax.generation.sample_files import MAX_DURATION, SampleOptions, replay, sample

_PROMPT = flags.DEFINE_multi_string('prompt', [], 'A text description (repeatable); with --schedule, one '
                                     'SECONDS:TEXT entry of a prompt schedule.')
_SCHEDULE = flags.DEFINE_bool('schedule', False, 'The --prompt flags are the entries SECONDS:TEXT of one prompt '
                              'schedule (text changing over time; the first at 0).')
_NEGATIVE = flags.DEFINE_string('negative-prompt', None, 'Guide away from this text instead of from no text.')
_UNCONDITIONAL = flags.DEFINE_bool('unconditional', False, 'Also generate without a text prompt (unconditional '
                                   'generation; an empty --prompt "" is refused).')
_PROMPTS_FILE = flags.DEFINE_string('prompts-file', None, '.txt (one prompt per line) or .jsonl ({"description", '
                                    'optional "seed", "duration"} per line).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Exported or released MAGNeT folder (default: the embedded '
                                  'default model).')
_T5 = flags.DEFINE_string('t5', None, 'transformers T5 folder for a released checkpoint (default: found beside it).')
_LORA = flags.DEFINE_multi_string('lora', [], 'LoRA adapter FILE[:scale] (a LoRA run\'s lora.safetensors) merged '
                                   'into the LM; repeatable, applied in order.')
_OUT = flags.DEFINE_string('out', 'outputs', 'Output folder (created).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the first sample of each prompt; sample j uses seed + j.')
_NUM_SAMPLES = flags.DEFINE_integer('num-samples', 1, 'Files per prompt.')
_DURATION = flags.DEFINE_float('duration', None, 'Seconds (default: the model\'s window). Longer than the window: '
                               'windowed long form. With --audio-prompt: the whole output, audio included.')
_MAX_DURATION = flags.DEFINE_float('max-duration', MAX_DURATION, 'Longest --duration (or prompts-file "duration") '
                                   'accepted, in seconds.')
_FORMAT = flags.DEFINE_enum('format', 'wav', sorted(audio.FORMATS), 'Output format (24-bit PCM).')
_NORMALIZE = flags.DEFINE_bool('normalize', False, 'Normalise each file to -14 LUFS (BS.1770), peaks <= -1 dBFS.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace existing output files.')
_PRESET = flags.DEFINE_enum('preset', None, sorted(presets.PRESETS), 'Sampling preset (see docs/sampling.md).')
_GREEDY = flags.DEFINE_bool('greedy', False, 'Argmax instead of sampling (use_sampling=False).')
_RESCORER = flags.DEFINE_string('rescorer', None, 'MusicGen-style LM folder (state_dict.bin) to rescore tokens with; '
                                'set --rescorer-weight or --preset quality.')
_AUDIO_PROMPT = flags.DEFINE_string('audio-prompt', None, 'Audio file to continue (default), --infill, --outpaint or '
                                    '--loop.')
_INFILL = flags.DEFINE_string('infill', None, 'START:END seconds of --audio-prompt to regenerate.')
_OUTPAINT = flags.DEFINE_enum('outpaint', None, ['left', 'right'], 'Extend --audio-prompt on this side.')
_LOOP = flags.DEFINE_bool('loop', False, 'Make seamless loops (of --duration, or of --audio-prompt).')
_BPM = flags.DEFINE_float('bpm', None, 'With --loop and --bars: a loop of exactly that many bars at this tempo.')
_BARS = flags.DEFINE_integer('bars', None, 'Bars of a --bpm loop.')
_BEATS_PER_BAR = flags.DEFINE_integer('beats-per-bar', 4, 'Beats per bar of a --bpm loop.')
_LOOP_COUNT = flags.DEFINE_integer('loop-count', 1, 'Write each --loop this many times in a row (for listening).')
_BEST_OF = flags.DEFINE_integer('best-of', 1, f'Generate N candidates per file (at most {best_of.MAX_CANDIDATES}, '
                                '--batch-size at a time) and keep the best scored.')
_SCORER = flags.DEFINE_string('best-of-scorer', 'stats', 'Scorer of --best-of candidates: stats, or clap:FOLDER '
                              '(a local CLAP model folder); see magnet_jax.generation.best_of.')
_STEP_PROGRESS = flags.DEFINE_bool('step-progress', False, 'Report decoding steps; Ctrl-C then stops at the next '
                                   'step, writing nothing of the batch.')
_OVERLAP = flags.DEFINE_float('overlap', None, 'Long form: seconds each window keeps of the previous one '
                              '(default: half a window).')
_BATCH_SIZE = flags.DEFINE_integer('batch-size', 4, 'Files generated together.')
_REPLAY = flags.DEFINE_string('replay', None, 'Regenerate the file of this JSON sidecar bit for bit (its batch, seeds, '
                               'decoding and LoRA adapters) into --out (default: replay/ beside it), and compare.')
_DTYPE = flags.DEFINE_enum('dtype', None, ['float32', 'bfloat16', 'float16'], 'LM compute dtype (default: bfloat16 '
                           'on GPU/TPU, float32 on CPU).')

# Every DecodingConfig field but use_sampling (--greedy) is a flag; its help and bounds come from the field.
_SAMPLING = {name: (flags.DEFINE_bool if field.type is bool else flags.DEFINE_string)(
    name.replace('_', '-'), None, help_text(name)) for name, field in FIELDS.items() if name != 'use_sampling'}


def parse_span(text: str) -> tuple[float, float]:
  """'START:END' seconds -> (start, end)."""
  try:
    start, end = (float(part) for part in text.split(':'))
  except ValueError as e:
    raise ValueError(f'--infill expects START:END in seconds (e.g. 4:6.5), got {text!r}') from e
  return start, end


def sampling_overrides() -> dict:
  """The DecodingConfig fields set by flags, checked (a bad value is an error before anything loads)."""
  values = parse_overrides(f'{name}={str(flag.value).lower() if isinstance(flag.value, bool) else flag.value}'
                           for name, flag in _SAMPLING.items() if flag.value is not None)
  if _GREEDY.value:
    values['use_sampling'] = False
  return values


def _reads_as_entry(text: str) -> bool:
  try:
    prompt_schedule.parse_entry(text)
  except ValueError:
    return False
  return True


def options_from_flags() -> SampleOptions:
  if _SCHEDULE.value:
    prompts = [Prompt.scheduled(prompt_schedule.parse_entry(text) for text in _PROMPT.value)] if _PROMPT.value else []
  else:
    prompts = [Prompt(text) for text in _PROMPT.value]
    if prompts and all(_reads_as_entry(text) for text in _PROMPT.value):
      logging.warning('every --prompt reads as SECONDS:TEXT (%s): they are generated as %d separate literal prompts; '
                      'pass --schedule to make them one prompt schedule', _PROMPT.value[0], len(prompts))
  if _PROMPTS_FILE.value:
    prompts += read_prompts_file(_PROMPTS_FILE.value)
  if _UNCONDITIONAL.value:
    prompts.append(Prompt(None))
  return SampleOptions(
      prompts=tuple(prompts), out=_OUT.value, checkpoint=_CHECKPOINT.value, t5=_T5.value, seed=_SEED.value,
      num_samples=_NUM_SAMPLES.value, duration=_DURATION.value, max_duration=_MAX_DURATION.value,
      file_format=_FORMAT.value,
      normalize=_NORMALIZE.value, overwrite=_OVERWRITE.value, preset=_PRESET.value, sampling=sampling_overrides(),
      rescorer=_RESCORER.value, audio_prompt=_AUDIO_PROMPT.value,
      infill=None if _INFILL.value is None else parse_span(_INFILL.value), outpaint=_OUTPAINT.value,
      loop=_LOOP.value, overlap=_OVERLAP.value, batch_size=_BATCH_SIZE.value, dtype=_DTYPE.value,
      negative=_NEGATIVE.value, bpm=_BPM.value, bars=_BARS.value, beats_per_bar=_BEATS_PER_BAR.value,
      loop_count=_LOOP_COUNT.value, best_of=_BEST_OF.value, scorer=_SCORER.value,
      step_progress=_STEP_PROGRESS.value, lora=tuple(_LORA.value))


def _main() -> None:
  logging.set_verbosity(logging.WARNING)  # JAX's backend probing is not news to someone generating music
  compile_cache.enable()
  if _REPLAY.value is not None:
    replay(_REPLAY.value, _OUT.value if flags.FLAGS['out'].present else None, log=lambda line: print(line, flush=True))
    return
  options, cancel = options_from_flags(), threading.Event()
  if options.step_progress:  # the first Ctrl-C stops at the next decoding step; a second one interrupts at once
    signal.signal(signal.SIGINT, lambda *_: (cancel.set(), signal.signal(signal.SIGINT, signal.default_int_handler)))
  sample(options, log=lambda line: print(line, flush=True), cancel=cancel)


def main() -> None:
  """Entry point of the `magnet-jax` console script and of sample.py."""
  cli.run(os.path.basename(sys.argv[0]) or 'magnet-jax', _main)
