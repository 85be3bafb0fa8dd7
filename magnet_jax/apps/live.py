"""`magnet-jax live`: music that plays while it is generated, for as long as you listen (`generation.live`).

  magnet-jax live --prompt "fast drum groove" | aplay               # endless; Ctrl-C ends it
  magnet-jax live --prompt "fast drum groove" --out - | ffplay -nodisp -
  magnet-jax live --prompt "ambient pads" --duration 60 --out live.wav

It writes a WAV stream (16-bit PCM; to stdout with `--out -`), each chunk as soon as it exists. Lines typed on
stdin change the prompt: `TEXT` from the next window, `SECONDS:TEXT` from that second of the stream. Time to first
audio, the real-time factor and underruns are printed at the end (to stderr with `--out -`). Ctrl-C or `kill` (SIGTERM)
ends it after the window in progress, the WAV whole. See docs/live.md.
"""
import os
import sys

from absl import flags, logging

from magnet_jax.apps import runner as cli
from magnet_jax.decoding import presets
from magnet_jax.generation import compile_cache, live
from magnet_jax.io import files

_PROMPT = flags.DEFINE_string('prompt', None, 'What to play (change it by typing lines on stdin).')
_NEGATIVE = flags.DEFINE_string('negative-prompt', None, 'Guide away from this text instead of from no text.')
_BPM = flags.DEFINE_float('bpm', None, 'Tempo, added to the prompt as the training captions state it.')
_PRESET = flags.DEFINE_enum('preset', None, sorted(presets.PRESETS), 'Decoding preset (see docs/sampling.md).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed: the same seed and the same timed changes give the same audio.')
_DURATION = flags.DEFINE_float('duration', None, f'Seconds, then stop (default: endless; at most '
                               f'{live.MAX_SECONDS:g}).')
_WINDOW = flags.DEFINE_float('window', None, 'Seconds of a window (default: the model\'s; shorter: first audio '
                             'sooner, less context).')
_OVERLAP = flags.DEFINE_float('overlap', None, 'Seconds of the previous window each window keeps (default: half a '
                              'window).')
_AHEAD = flags.DEFINE_integer('ahead', 2, f'Chunks generated ahead of the output (1 to {live.MAX_AHEAD}).')
_OUT = flags.DEFINE_string('out', '-', 'WAV file, or - for stdout (pipe it to aplay or ffplay -).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Exported or released MAGNeT folder (default: the embedded '
                                  'default model).')
_T5 = flags.DEFINE_string('t5', None, 'transformers T5 folder for a released checkpoint (default: found beside it).')


def _main() -> None:
  out = _OUT.value
  log_file = sys.stderr if out == '-' else sys.stdout
  log = lambda line: print(line, file=log_file, flush=True)
  live.check(_PROMPT.value or '', _SEED.value, _DURATION.value)
  if not 1 <= _AHEAD.value <= live.MAX_AHEAD:
    raise ValueError(f'--ahead {_AHEAD.value}: expected 1 to {live.MAX_AHEAD} chunks')
  if _BPM.value is not None and not live.BPM_RANGE[0] <= _BPM.value <= live.BPM_RANGE[1]:
    raise ValueError(f'--bpm {_BPM.value:g}: expected {live.BPM_RANGE[0]:g} to {live.BPM_RANGE[1]:g}')
  if out != '-' and os.path.isdir(out):
    raise ValueError(f'--out {out} is a folder; give a file name or -')
  logging.set_verbosity(logging.WARNING)
  compile_cache.enable()
  from magnet_jax.generation import pretrained  # the model loads only after the flags are checked
  log(f'loading {_CHECKPOINT.value or "the embedded default"}')
  pipeline = pretrained.load(_CHECKPOINT.value, **({'t5': _T5.value} if _T5.value else {}))
  pipeline.text_pad_to = live.TEXT_TOKENS
  pipeline.on_compile = lambda what: log(f'compiling ({what}; first run only)')
  stream = live.LiveStream(pipeline, live.Controls(_PROMPT.value, _NEGATIVE.value, _BPM.value, _PRESET.value),
                           seed=_SEED.value, duration=_DURATION.value, window=_WINDOW.value,
                           overlap=_OVERLAP.value)
  live.follow(stream, sys.stdin, lambda message: log(f'magnet-jax live: {message}'))

  def told(chunk: live.Chunk) -> None:
    if chunk.index == 0:
      log(f'first audio after {chunk.ready:.2f} s ({stream.timing.compile:.2f} s of it compiling)')
    log(f'{chunk.start:8.2f} s  window {chunk.index}: {chunk.controls.text} ({chunk.compute:.2f} s)')

  ending = 'the end'
  with live.Interrupt() as interrupt:  # Ctrl-C / kill: the stream stops after its window in progress
    tmp = None if out == '-' else files.temporary_beside(out)
    target = sys.stdout.buffer if tmp is None else open(tmp, 'wb')  # noqa: SIM115 (closed below, then published)
    try:
      live.write_wav(stream, target, _AHEAD.value, told, stop=interrupt.requested)
    except BrokenPipeError:
      ending = 'the player closed the stream'
      sys.stdout = open(os.devnull, 'w')  # noqa: SIM115 (the broken pipe must not be flushed again at exit)
    except BaseException:
      if tmp is not None:
        target.close()
        files.discard(tmp)
      raise
    if tmp is not None:
      target.close()
      files.publish(tmp, out)
  ending = {None: ending, 'SIGINT': 'Ctrl-C'}.get(interrupt.received, interrupt.received)
  log(f'stopped at {ending}: {stream.timing.line()}' + (f'; wrote {out}' if tmp else ''))


def main() -> None:
  cli.run('magnet-jax live', _main)
