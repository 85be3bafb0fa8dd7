"""Merge LoRA adapters into an exported pipeline folder (plain weights: loads and samples like any other).

  python -m magnet_jax.apps.merge_lora --lora /tmp/ft-lora/lora.safetensors[:scale] [--lora ...] --out DIR
      [--checkpoint EXPORTED_FOLDER]   (default: the embedded default)
"""
from absl import flags

from magnet_jax.apps import runner
from magnet_jax.generation import lora as lora_lib
from magnet_jax.generation import pretrained
from magnet_jax.io import params as params_io

_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Exported pipeline folder the adapters were trained on '
                                  '(default: the embedded default).')
_LORA = flags.DEFINE_multi_string('lora', [], 'Adapter FILE[:scale]; repeatable, merged in order.')
_OUT = flags.DEFINE_string('out', None, 'Output folder (an exported pipeline).')
flags.mark_flags_as_required(['out'])


def main() -> None:
  if not _LORA.value:
    raise ValueError('give at least one --lora FILE[:scale]')
  folder = _CHECKPOINT.value or pretrained.EMBEDDED_DIR
  spec = params_io.load_json(f'{folder}/{pretrained.PIPELINE_FILE}')  # released folders: export them first
  adapters = [lora_lib.parse_spec(s) for s in _LORA.value]
  pipeline = pretrained.load(folder, lora=[f for f, _ in adapters], lora_scale=[s for _, s in adapters],
                             dtype=spec['lm']['dtype'])
  pretrained.save_pipeline(_OUT.value, pipeline, spec['text_encoder'], **{
      **spec.get('metadata', {}), 'lora': [{'file': f, 'scale': s} for f, s in adapters], 'base': folder})
  print(f'wrote {_OUT.value}')


if __name__ == '__main__':
  runner.run('python -m magnet_jax.apps.merge_lora', main)
