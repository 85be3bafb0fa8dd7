"""Score generated audio against references offline: FAD, KAD, FAD-inf, KL and the CLAP score, each by the model
chosen for it, each with a bootstrap interval.

  python -m magnet_jax.apps.evaluate --generated outputs/ --reference refs/ [--metrics fad,kl] [--out report.json]
  python -m magnet_jax.apps.evaluate --generated outputs/ --reference refs/ --metrics fad,kad,fad_inf,kl,clap \\
      --bootstrap 1000 --embedder vggish --vggish-checkpoint vggish-10086976.pth --classifier ast --ast-folder ast/ \\
      --clap-folder clap/                                   # the paper's models (local files, nothing downloaded)
  python -m magnet_jax.apps.evaluate --reference refs/ --save-reference-stats refs.npz      # cache the reference
  python -m magnet_jax.apps.evaluate --generated outputs/ --reference-stats refs.npz --metrics fad
  python -m magnet_jax.apps.evaluate --prompts-file prompts.jsonl [--checkpoint DIR] --generated outputs/ \\
      --reference refs/                                     # generate the prompts first (as magnet-jax does)

Prints a Markdown table; --out writes the JSON report (and the table beside it, .md), naming the model behind each
number, with 95% bootstrap intervals (--bootstrap draws of the generated clips) and the clips of largest per-clip FAD.
Models come from magnet_jax/evaluation/registry.py (--embedder, --classifier, --scorer and their file options).
KL pairs generated and reference files by name (stem); CLAP reads each generated file's text from its
sidecar (or --prompts-file); see magnet_jax/evaluation/quality.py.
"""
import dataclasses
import math
import os

from absl import flags

from magnet_jax.apps import runner
from magnet_jax.evaluation import bootstrap, quality, registry
from magnet_jax.evaluation.metrics import EmbeddingStats
from magnet_jax.generation.prompts import read_prompts_file
from magnet_jax.generation.sample_files import SampleOptions, sample

_GENERATED = flags.DEFINE_string('generated', None, 'Folder of generated audio (written first with --prompts-file).')
_REFERENCE = flags.DEFINE_string('reference', None, 'Folder of reference audio.')
_REFERENCE_STATS = flags.DEFINE_string('reference-stats', None, 'Cached reference statistics (.npz; FAD only).')
_SAVE_REFERENCE_STATS = flags.DEFINE_string('save-reference-stats', None, 'Write the --reference folder\'s '
                                            'statistics to this .npz.')
_METRICS = flags.DEFINE_list('metrics', ['fad', 'kl'], f'Metrics among {",".join(quality.METRICS)}.')
_MODELS = registry.define_flags()  # --embedder, --classifier, --scorer and each model's file option
flags.adopt_module_key_flags(registry)  # so that --help lists them
_BOOTSTRAP = flags.DEFINE_integer('bootstrap', bootstrap.DRAWS, 'Bootstrap draws of the generated clips for each '
                                  'metric\'s 95% interval (0: none).')
_BOOTSTRAP_SEED = flags.DEFINE_integer('bootstrap-seed', 0, 'Seed of the bootstrap draws and of FAD-inf\'s subsets.')
_BATCH_SIZE = flags.DEFINE_integer('batch-size', 32, 'Patches embedded per jitted batch.')
_OUT = flags.DEFINE_string('out', None, 'JSON report path (a Markdown table is written beside it as .md).')
_PROMPTS_FILE = flags.DEFINE_string('prompts-file', None, 'Generate these prompts (.txt / .jsonl) into --generated '
                                    'before scoring.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Model for --prompts-file (default: the embedded default).')
_PRESET = flags.DEFINE_string('preset', None, 'Sampling preset for --prompts-file.')


def main():
  metrics = quality.check_metrics(_METRICS.value)
  if not _GENERATED.value and not _SAVE_REFERENCE_STATS.value:
    raise ValueError('--generated is required (or --reference with --save-reference-stats)')
  if _REFERENCE.value and _REFERENCE_STATS.value:
    raise ValueError('give --reference or --reference-stats, not both')
  if _SAVE_REFERENCE_STATS.value and not _REFERENCE.value:
    raise ValueError('--save-reference-stats needs --reference (a folder)')
  if set(metrics) - {'clap'} and not _REFERENCE.value and not _REFERENCE_STATS.value:
    raise ValueError('--reference (a folder) or --reference-stats (an .npz) is required')
  if {'kad', 'kl'} & set(metrics) and _REFERENCE_STATS.value:
    raise ValueError('metrics kad and kl need --reference (a folder): cached statistics hold only FAD\'s Gaussian '
                     '(use --metrics fad,fad_inf with --reference-stats)')
  if _BOOTSTRAP.value:
    bootstrap.check(_BOOTSTRAP.value, bootstrap.LEVEL)
  # Bad input fails here, before any model is loaded and compiled.
  choice = quality.choose_models(metrics if _GENERATED.value else ('fad',),
                                 need_embedder=bool(_SAVE_REFERENCE_STATS.value), **_MODELS())
  reference = None
  if _REFERENCE_STATS.value:
    reference = EmbeddingStats.load(_REFERENCE_STATS.value, choice.embedder_name)
  elif _REFERENCE.value:
    quality.list_audio(_REFERENCE.value)
  prompts = read_prompts_file(_PROMPTS_FILE.value) if _PROMPTS_FILE.value else []
  if prompts and os.path.isdir(_GENERATED.value) and any(
      name.lower().endswith(quality.AUDIO_EXTENSIONS) for name in os.listdir(_GENERATED.value)):
    raise FileExistsError(f'--generated {_GENERATED.value} already holds audio: --prompts_file writes into a new or '
                          'empty folder (its files are never overwritten)')
  if _GENERATED.value and not prompts:
    paths = quality.list_audio(_GENERATED.value)
    if 'clap' in metrics and not quality.read_texts(paths):
      raise ValueError(f'metric clap needs texts: none of the {len(paths)} files in {_GENERATED.value} has a '
                       'sidecar with a "prompt" (pass --prompts-file)')
  models = choice.load(_BATCH_SIZE.value)
  if _REFERENCE.value and (models.embedder or models.classifier):  # the scorer alone needs no reference
    reference = quality.embed_folder(dataclasses.replace(models, scorer=None), _REFERENCE.value)
    if _SAVE_REFERENCE_STATS.value:
      reference.stats().save(_SAVE_REFERENCE_STATS.value)
      print(f'wrote {_SAVE_REFERENCE_STATS.value} ({len(reference.names)} files, {len(reference.skipped)} skipped)')
  if not _GENERATED.value:
    return
  if prompts:
    sample(SampleOptions(prompts=tuple(prompts), out=_GENERATED.value, checkpoint=_CHECKPOINT.value,
                         preset=_PRESET.value))
  texts = quality.read_texts(quality.list_audio(_GENERATED.value), prompts) if 'clap' in metrics else None
  result = quality.report(quality.embed_folder(models, _GENERATED.value, texts), reference, metrics,
                          _BOOTSTRAP.value, _BOOTSTRAP_SEED.value)
  bad = [name for name, value in result['metrics'].items() if not math.isfinite(value)]
  if bad:
    raise ValueError(f'{", ".join(bad)} came out {result["metrics"][bad[0]]} (non-finite embeddings or statistics): '
                     'no report written')
  table = quality.markdown_table(result)
  print(table)
  if _OUT.value:
    quality.write_report(_OUT.value, result, table)


if __name__ == '__main__':
  runner.run('magnet_jax.apps.evaluate', main)
