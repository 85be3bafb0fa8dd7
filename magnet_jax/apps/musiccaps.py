"""The MAGNeT paper's MusicCaps table offline: generate every caption, then FAD, KL, CLAP and seconds per sample.

  python -m magnet_jax.apps.musiccaps --captions musiccaps-public.csv --audio_dir musiccaps/ \\
      --checkpoint magnet-small-10secs/ --out runs/musiccaps [--limit 100] [--preset balanced] \\
      [--set temp=3.0 --set decoding_steps=[20,10,10,10]] \\
      [--vggish_checkpoint vggish-10086976.pth] [--ast_folder ast/] [--clap_folder clap/]

Without --vggish_checkpoint FAD uses musicnn, without --ast_folder KL uses musicnn's tags, without --clap_folder
there is no CLAP column. Interrupted runs resume: captions already generated in --out are not generated again.
Writes --out/musiccaps.json and musiccaps.md; see magnet_jax/evaluation/musiccaps.py.
"""
import dataclasses
import json

from absl import flags, logging

from magnet_jax.apps import runner
from magnet_jax.decoding import DecodingConfig, presets
from magnet_jax.evaluation import musiccaps, quality
from magnet_jax.generation import compile_cache
from magnet_jax.generation.sample_files import SampleOptions, check_options, sample
from magnet_jax.io import files

_CAPTIONS = flags.DEFINE_string('captions', None, 'The MusicCaps CSV (columns ytid, caption, ...).')
_AUDIO_DIR = flags.DEFINE_string('audio_dir', None, 'Reference clips, one <ytid>.wav (or .flac, ...) per row.')
_OUT = flags.DEFINE_string('out', None, 'Run folder: generated/ and musiccaps.json / .md.')
_LIMIT = flags.DEFINE_integer('limit', None, 'Only the first N captions that have a reference clip.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Exported or released MAGNeT folder (default: the embedded '
                                  'default).')
_T5 = flags.DEFINE_string('t5', None, 'transformers T5 folder for a released checkpoint (default: found beside it).')
_PRESET = flags.DEFINE_enum('preset', None, sorted(presets.PRESETS), 'Sampling preset.')
_SET = flags.DEFINE_multi_string('set', [], 'A decoding override NAME=JSON over --preset, e.g. temp=3.0 or '
                                 'decoding_steps=[20,10,10,10] (repeatable).')
_DURATION = flags.DEFINE_float('duration', None, "Seconds per sample (default: the model's; MusicCaps clips are 10).")
_SEED = flags.DEFINE_integer('seed', 0, 'Caption i of the CSV is generated with seed + i.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 4, 'Captions generated together (1: the per-sample latency).')
_VGGISH_CHECKPOINT = flags.DEFINE_string('vggish_checkpoint', None, 'FAD with VGGish (vggish-10086976.pth); '
                                         'default: musicnn.')
_AST_FOLDER = flags.DEFINE_string('ast_folder', None, 'KL with this AST classifier folder; default: musicnn\'s tags.')
_CLAP_FOLDER = flags.DEFINE_string('clap_folder', None, 'CLAP score with this CLAP model folder.')
_EMBED_BATCH_SIZE = flags.DEFINE_integer('embed_batch_size', 32, 'Patches per jitted batch of the evaluation models.')


def decoding_overrides(items: list[str]) -> dict:
  """['NAME=JSON', ...] -> DecodingConfig overrides, validated.

  Raises:
    ValueError: not NAME=JSON, an unknown field or a bad value.
  """
  values = {}
  for item in items:
    name, sep, text = item.partition('=')
    try:
      value = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f'--set expects NAME=JSON (e.g. temp=3.0), got {item!r}') from e
    if not sep or name not in {f.name for f in dataclasses.fields(DecodingConfig)}:
      raise ValueError(f'--set {item!r}: not a decoding field NAME=JSON (e.g. temp=3.0)')
    values[name] = tuple(value) if isinstance(value, list) else value
  DecodingConfig(**values)
  return values


def main() -> None:
  logging.set_verbosity(logging.WARNING)  # JAX's backend probing is not news here
  if not _CAPTIONS.value or not _AUDIO_DIR.value or not _OUT.value:
    raise ValueError('--captions, --audio_dir and --out are required')
  options = SampleOptions(prompts=(), checkpoint=_CHECKPOINT.value, t5=_T5.value, preset=_PRESET.value,
                          sampling=decoding_overrides(_SET.value), duration=_DURATION.value,
                          batch_size=_BATCH_SIZE.value, overwrite=True)  # replaces audio left without its sidecar
  check_options(options)
  rows, missing = musiccaps.read_captions(_CAPTIONS.value, _AUDIO_DIR.value, _LIMIT.value)
  choice = quality.choose_models(('fad', 'kl') + (('clap',) if _CLAP_FOLDER.value else ()),
                                 'vggish' if _VGGISH_CHECKPOINT.value else 'musicnn',
                                 'ast' if _AST_FOLDER.value else 'musicnn', _VGGISH_CHECKPOINT.value,
                                 _AST_FOLDER.value, _CLAP_FOLDER.value)
  files.check_writable_folder(_OUT.value, '--out')
  compile_cache.enable()
  def generate(prompts, folder):
    sample(dataclasses.replace(options, prompts=tuple(prompts), out=folder), log=lambda line: print(line, flush=True))
  result = musiccaps.evaluate(rows, _OUT.value, generate, choice, _SEED.value, missing, _EMBED_BATCH_SIZE.value)
  print(musiccaps.paper_table(result))


if __name__ == '__main__':
  runner.run('magnet_jax.apps.musiccaps', main)
