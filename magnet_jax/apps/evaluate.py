"""Score generated audio against references offline: FAD and tag-KL with the musicnn embedder shipped in the wheel.

  python -m magnet_jax.apps.evaluate --generated outputs/ --reference refs/ [--metrics fad,kl] [--out report.json]
  python -m magnet_jax.apps.evaluate --reference refs/ --save_reference_stats refs.npz      # cache the reference
  python -m magnet_jax.apps.evaluate --generated outputs/ --reference_stats refs.npz --metrics fad
  python -m magnet_jax.apps.evaluate --prompts_file prompts.jsonl [--checkpoint DIR] --generated outputs/ \
      --reference refs/                                     # generate the prompts first (as magnet-jax does)

Prints a Markdown table; --out writes the JSON report (and the table beside it, .md). KL pairs generated and
reference files by name (stem); see magnet_jax/evaluation/quality.py.
"""
import json
import os

from absl import flags

from magnet_jax.apps import runner
from magnet_jax.apps.sample_run import SampleOptions, sample
from magnet_jax.evaluation import quality
from magnet_jax.evaluation.metrics import EmbeddingStats
from magnet_jax.generation.requests import read_prompts_file
from magnet_jax.io.files import atomic_write

_GENERATED = flags.DEFINE_string('generated', None, 'Folder of generated audio (written first with --prompts_file).')
_REFERENCE = flags.DEFINE_string('reference', None, 'Folder of reference audio.')
_REFERENCE_STATS = flags.DEFINE_string('reference_stats', None, 'Cached reference statistics (.npz; FAD only).')
_SAVE_REFERENCE_STATS = flags.DEFINE_string('save_reference_stats', None, 'Write the --reference folder\'s '
                                            'statistics to this .npz.')
_METRICS = flags.DEFINE_list('metrics', ['fad', 'kl'], f'Metrics among {",".join(quality.METRICS)}.')
_EMBEDDER = flags.DEFINE_enum('embedder', 'musicnn', sorted(quality.EMBEDDERS), 'Embedder of audio.')
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
  if not _REFERENCE.value and not _REFERENCE_STATS.value:
    raise ValueError('--reference (a folder) or --reference_stats (an .npz) is required')
  # Bad input fails here, before the embedder is loaded and compiled.
  embedder_class = quality.EMBEDDERS[_EMBEDDER.value]
  if _REFERENCE_STATS.value:
    reference = EmbeddingStats.load(_REFERENCE_STATS.value, embedder_class.name)
  else:
    quality.list_audio(_REFERENCE.value)
  if _GENERATED.value and not _PROMPTS_FILE.value:
    quality.list_audio(_GENERATED.value)
  embedder = embedder_class(batch_size=_BATCH_SIZE.value)
  if _REFERENCE.value:
    reference = quality.embed_folder(embedder, _REFERENCE.value)
    if _SAVE_REFERENCE_STATS.value:
      reference.stats().save(_SAVE_REFERENCE_STATS.value)
      print(f'wrote {_SAVE_REFERENCE_STATS.value} ({len(reference.names)} files, {len(reference.skipped)} skipped)')
  if not _GENERATED.value:
    return
  if _PROMPTS_FILE.value:
    sample(SampleOptions(prompts=tuple(read_prompts_file(_PROMPTS_FILE.value)), out=_GENERATED.value,
                         checkpoint=_CHECKPOINT.value, preset=_PRESET.value, overwrite=True))
  result = quality.report(quality.embed_folder(embedder, _GENERATED.value), reference, metrics)
  table = quality.markdown_table(result)
  print(table)
  if _OUT.value:
    atomic_write(_OUT.value, lambda tmp: _write(tmp, json.dumps(result, indent=2) + '\n'))
    atomic_write(os.path.splitext(_OUT.value)[0] + '.md', lambda tmp: _write(tmp, table + '\n'))


def _write(path: str, text: str) -> None:
  with open(path, 'w') as f:
    f.write(text)


if __name__ == '__main__':
  runner.run('magnet_jax.apps.evaluate', main)
