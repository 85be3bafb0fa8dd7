"""Score generated audio against references offline: FAD, KL and the CLAP score, each by the model chosen for it.

  python -m magnet_jax.apps.evaluate --generated outputs/ --reference refs/ [--metrics fad,kl] [--out report.json]
  python -m magnet_jax.apps.evaluate --generated outputs/ --reference refs/ --metrics fad,kl,clap \\
      --embedder vggish --vggish_checkpoint vggish-10086976.pth --classifier ast --ast_folder ast/ \\
      --clap_folder clap/                                   # the paper's models (local files, nothing downloaded)
  python -m magnet_jax.apps.evaluate --reference refs/ --save_reference_stats refs.npz      # cache the reference
  python -m magnet_jax.apps.evaluate --generated outputs/ --reference_stats refs.npz --metrics fad
  python -m magnet_jax.apps.evaluate --prompts_file prompts.jsonl [--checkpoint DIR] --generated outputs/ \\
      --reference refs/                                     # generate the prompts first (as magnet-jax does)

Prints a Markdown table; --out writes the JSON report (and the table beside it, .md), naming the model behind each
number. KL pairs generated and reference files by name (stem); CLAP reads each generated file's text from its
sidecar (or --prompts_file); see magnet_jax/evaluation/quality.py.
"""
import dataclasses

from absl import flags

from magnet_jax.apps import runner
from magnet_jax.evaluation import quality
from magnet_jax.evaluation.metrics import EmbeddingStats
from magnet_jax.generation.prompts import read_prompts_file
from magnet_jax.generation.sample_files import SampleOptions, sample

_GENERATED = flags.DEFINE_string('generated', None, 'Folder of generated audio (written first with --prompts_file).')
_REFERENCE = flags.DEFINE_string('reference', None, 'Folder of reference audio.')
_REFERENCE_STATS = flags.DEFINE_string('reference_stats', None, 'Cached reference statistics (.npz; FAD only).')
_SAVE_REFERENCE_STATS = flags.DEFINE_string('save_reference_stats', None, 'Write the --reference folder\'s '
                                            'statistics to this .npz.')
_METRICS = flags.DEFINE_list('metrics', ['fad', 'kl'], f'Metrics among {",".join(quality.METRICS)}.')
_EMBEDDER = flags.DEFINE_enum('embedder', 'musicnn', sorted(quality.EMBEDDERS), 'FAD embedder (vggish: '
                              '--vggish_checkpoint).')
_VGGISH_CHECKPOINT = flags.DEFINE_string('vggish_checkpoint', None, 'torchvggish\'s vggish-10086976.pth (or a '
                                         '.safetensors / .npz of its state dict).')
_CLASSIFIER = flags.DEFINE_enum('classifier', 'musicnn', list(quality.CLASSIFIERS), 'KL classifier (musicnn: its '
                                '50 tags; ast: --ast_folder).')
_AST_FOLDER = flags.DEFINE_string('ast_folder', None, 'AST audio classifier folder (for --classifier ast).')
_CLAP_FOLDER = flags.DEFINE_string('clap_folder', None, 'CLAP model folder (for --metrics ...,clap).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 32, 'Patches embedded per jitted batch.')
_OUT = flags.DEFINE_string('out', None, 'JSON report path (a Markdown table is written beside it as .md).')
_PROMPTS_FILE = flags.DEFINE_string('prompts_file', None, 'Generate these prompts (.txt / .jsonl) into --generated '
                                    'before scoring.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Model for --prompts_file (default: the embedded default).')
_PRESET = flags.DEFINE_string('preset', None, 'Sampling preset for --prompts_file.')


def main():
  metrics = quality.check_metrics(_METRICS.value)
  if not _GENERATED.value and not _SAVE_REFERENCE_STATS.value:
    raise ValueError('--generated is required (or --reference with --save_reference_stats)')
  if _REFERENCE.value and _REFERENCE_STATS.value:
    raise ValueError('give --reference or --reference_stats, not both')
  if _SAVE_REFERENCE_STATS.value and not _REFERENCE.value:
    raise ValueError('--save_reference_stats needs --reference (a folder)')
  if {'fad', 'kl'} & set(metrics) and not _REFERENCE.value and not _REFERENCE_STATS.value:
    raise ValueError('--reference (a folder) or --reference_stats (an .npz) is required')
  if 'kl' in metrics and _REFERENCE_STATS.value:
    raise ValueError('metric kl needs --reference (a folder): cached statistics hold no label distributions '
                     '(use --metrics fad with --reference_stats)')
  # Bad input fails here, before any model is loaded and compiled.
  choice = quality.choose_models(metrics if _GENERATED.value else ('fad',), _EMBEDDER.value, _CLASSIFIER.value,
                                 _VGGISH_CHECKPOINT.value, _AST_FOLDER.value, _CLAP_FOLDER.value,
                                 need_embedder=bool(_SAVE_REFERENCE_STATS.value))
  reference = None
  if _REFERENCE_STATS.value:
    reference = EmbeddingStats.load(_REFERENCE_STATS.value, choice.embedder_name)
  elif _REFERENCE.value:
    quality.list_audio(_REFERENCE.value)
  prompts = read_prompts_file(_PROMPTS_FILE.value) if _PROMPTS_FILE.value else []
  if _GENERATED.value and not prompts:
    paths = quality.list_audio(_GENERATED.value)
    if 'clap' in metrics and not quality.read_texts(paths):
      raise ValueError(f'metric clap needs texts: none of the {len(paths)} files in {_GENERATED.value} has a '
                       'sidecar with a "prompt" (pass --prompts_file)')
  models = choice.load(_BATCH_SIZE.value)
  if _REFERENCE.value and (models.embedder or models.classifier):  # CLAP alone needs no reference
    reference = quality.embed_folder(dataclasses.replace(models, clap=None), _REFERENCE.value)
    if _SAVE_REFERENCE_STATS.value:
      reference.stats().save(_SAVE_REFERENCE_STATS.value)
      print(f'wrote {_SAVE_REFERENCE_STATS.value} ({len(reference.names)} files, {len(reference.skipped)} skipped)')
  if not _GENERATED.value:
    return
  if prompts:
    sample(SampleOptions(prompts=tuple(prompts), out=_GENERATED.value, checkpoint=_CHECKPOINT.value,
                         preset=_PRESET.value, overwrite=True))
  texts = quality.read_texts(quality.list_audio(_GENERATED.value), prompts) if 'clap' in metrics else None
  result = quality.report(quality.embed_folder(models, _GENERATED.value, texts), reference, metrics)
  table = quality.markdown_table(result)
  print(table)
  if _OUT.value:
    quality.write_report(_OUT.value, result, table)


if __name__ == '__main__':
  runner.run('magnet_jax.apps.evaluate', main)
