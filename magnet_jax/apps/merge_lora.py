"""Merge LoRA adapters into an exported pipeline folder (plain weights: loads and samples like any other).

  python -m magnet_jax.apps.merge_lora --lora /tmp/ft-lora/lora.safetensors[:scale] [--lora ...] --out DIR
      [--checkpoint EXPORTED_FOLDER]   (default: the embedded default) [--overwrite]
"""
from absl import flags

from magnet_jax.apps import runner
from magnet_jax.generation import pretrained

_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Exported pipeline folder the adapters were trained on '
                                  '(default: the embedded default).')
_LORA = flags.DEFINE_multi_string('lora', [], 'Adapter FILE[:scale]; repeatable, merged in order.')
_OUT = flags.DEFINE_string('out', None, 'Output folder (an exported pipeline), written whole or not at all.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace an existing --out folder (never the --checkpoint one).')
flags.mark_flags_as_required(['out'])


def main() -> None:
  print(pretrained.merge_adapters(_CHECKPOINT.value, _LORA.value, _OUT.value, overwrite=_OVERWRITE.value).summary())


if __name__ == '__main__':
  runner.run('python -m magnet_jax.apps.merge_lora', main)
