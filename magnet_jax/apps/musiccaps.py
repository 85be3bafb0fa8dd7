"""The MAGNeT paper's MusicCaps table offline: generate every caption, then FAD, KAD, FAD-inf, KL, CLAP (each with a
bootstrap interval) and seconds per sample.

  python -m magnet_jax.apps.musiccaps --captions musiccaps-public.csv --audio-dir musiccaps/ \\
      --checkpoint magnet-small-10secs/ --out runs/musiccaps [--limit 100] [--preset balanced] \\
      [--set temp=3.0 --set decoding_steps=20,10,10,10] [--metrics fad,kad,fad_inf,kl,clap] [--bootstrap 1000] \\
      [--embedder vggish --vggish-checkpoint vggish-10086976.pth] [--classifier ast --ast-folder ast/] \\
      [--clap-folder clap/]

The paper's models: --embedder vggish (FAD), --classifier ast (KL in PaSST's place), --clap-folder (a music CLAP).
The defaults (musicnn for FAD / KAD and KL) need no file. Interrupted runs resume: captions already generated in
--out are not generated again.
Writes --out/musiccaps.json and musiccaps.md; see magnet_jax/evaluation/musiccaps.py.
"""
import dataclasses

from absl import flags, logging

from magnet_jax.apps import runner
from magnet_jax.decoding import presets
from magnet_jax.decoding.config import parse_overrides
from magnet_jax.evaluation import bootstrap, musiccaps, quality, registry
from magnet_jax.generation import compile_cache
from magnet_jax.generation.sample_files import SampleOptions, check_options, sample
from magnet_jax.io import files

_CAPTIONS = flags.DEFINE_string('captions', None, 'The MusicCaps CSV (columns ytid, caption, ...).')
_AUDIO_DIR = flags.DEFINE_string('audio-dir', None, 'Reference clips, one <ytid>.wav (or .flac, ...) per row.')
_OUT = flags.DEFINE_string('out', None, 'Run folder: generated/ and musiccaps.json / .md.')
_LIMIT = flags.DEFINE_integer('limit', None, 'Only the first N captions that have a reference clip.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Exported or released MAGNeT folder (default: the embedded '
                                  'default).')
_T5 = flags.DEFINE_string('t5', None, 'transformers T5 folder for a released checkpoint (default: found beside it).')
_PRESET = flags.DEFINE_enum('preset', None, sorted(presets.PRESETS), 'Sampling preset.')
_SET = flags.DEFINE_multi_string('set', [], 'A decoding override NAME=VALUE over --preset, e.g. temp=3.0 or '
                                 'decoding_steps=20,10,10,10 (repeatable; names and ranges: magnet-jax --help).')
_DURATION = flags.DEFINE_float('duration', None, "Seconds per sample (default: the model's; MusicCaps clips are 10).")
_SEED = flags.DEFINE_integer('seed', 0, 'Caption i of the CSV is generated with seed + i.')
_BATCH_SIZE = flags.DEFINE_integer('batch-size', 4, 'Captions generated together (1: the per-sample latency).')
_METRICS = flags.DEFINE_list('metrics', list(musiccaps.METRICS), f'Metrics among {",".join(quality.METRICS)} (clap '
                            'needs --clap-folder).')
_MODELS = registry.define_flags()  # --embedder, --classifier, --scorer and each model's file option
flags.adopt_module_key_flags(registry)  # so that --help lists them
_BOOTSTRAP = flags.DEFINE_integer('bootstrap', bootstrap.DRAWS, 'Bootstrap draws of the captions for each '
                                  'metric\'s 95% interval (0: none).')
_EMBED_BATCH_SIZE = flags.DEFINE_integer('embed-batch-size', 32, 'Patches per jitted batch of the evaluation models.')



def main() -> None:
  logging.set_verbosity(logging.WARNING)  # JAX's backend probing is not news here
  if not _CAPTIONS.value or not _AUDIO_DIR.value or not _OUT.value:
    raise ValueError('--captions, --audio-dir and --out are required')
  options = SampleOptions(prompts=(), checkpoint=_CHECKPOINT.value, t5=_T5.value, preset=_PRESET.value,
                          sampling=parse_overrides(_SET.value), duration=_DURATION.value,
                          batch_size=_BATCH_SIZE.value, overwrite=True)  # replaces audio left without its sidecar
  check_options(options)
  rows, missing = musiccaps.read_captions(_CAPTIONS.value, _AUDIO_DIR.value, _LIMIT.value)
  choice = quality.choose_models(_METRICS.value, **_MODELS())
  if _BOOTSTRAP.value:
    bootstrap.check(_BOOTSTRAP.value, bootstrap.LEVEL)
  files.check_writable_folder(_OUT.value, '--out')
  compile_cache.enable()
  def generate(prompts, folder):
    sample(dataclasses.replace(options, prompts=tuple(prompts), out=folder), log=lambda line: print(line, flush=True))
  result = musiccaps.evaluate(rows, _OUT.value, generate, choice, _SEED.value, missing, _EMBED_BATCH_SIZE.value,
                              _BOOTSTRAP.value)
  print(musiccaps.paper_table(result))


if __name__ == '__main__':
  runner.run('magnet_jax.apps.musiccaps', main)
