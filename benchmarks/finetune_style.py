"""Did fine-tuning on a new style work? Generations of the base, full fine-tuned and LoRA models for captions of
the new style, their audio statistics next to the style's own clips, and the validation cross-entropy of each run
before and after (from its metrics.jsonl).

  python -m benchmarks.finetune_style --corpus /tmp/mallets --full /tmp/ft-full --lora /tmp/ft-lora \
      --data-dir /tmp/mallets-tokens [--seeds 0,1,2,3] [--out benchmarks/results/finetune_style.json]

`--full` is a full fine-tuning workdir of configs/default_model_finetune.py, `--lora` a LoRA one (its
lora.safetensors is applied to the embedded default); the corpus is `python -m magnet_jax.apps.corpus
--category mallets` output (its valid split's clips give the style's reference statistics).
"""
import dataclasses
import json
import os
import time

import numpy as np
from absl import flags

from magnet_jax.apps import runner
from magnet_jax.audio import audio_stats
from magnet_jax.configs import default_model_finetune
from magnet_jax.corpus.clips import read_split
from magnet_jax.generation import pretrained
from magnet_jax.io.files import atomic_write
from magnet_jax.training import trainer

CAPTIONS = ('solo marimba in C major', 'rolling marimba arpeggios, 130 bpm', 'fast wooden marimba ostinato in A minor')
STATS = ('onset_rate', 'centroid_hz', 'low_ratio')

_CORPUS = flags.DEFINE_string('corpus', None, 'The new style\'s corpus folder (valid.jsonl).')
_FULL = flags.DEFINE_string('full', None, 'Full fine-tuning workdir.')
_LORA = flags.DEFINE_string('lora', None, 'LoRA workdir (lora.safetensors).')
_DATA_DIR = flags.DEFINE_string('data-dir', None, 'The token dataset the runs trained on (restores their config).')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2', '3'], 'Seeds per caption.')
_MODELS = flags.DEFINE_list('models', ['base', 'full', 'lora'], 'Which models to generate with.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/finetune_style.json', 'JSON results.')


def _medians(clips, sample_rate) -> dict[str, float]:
  stats = [audio_stats(c, sample_rate) for c in clips]
  return {name: float(np.median([s[name] for s in stats])) for name in STATS}


def _generated(pipeline, seeds) -> dict[str, float]:
  audio = pipeline.generate([c for c in CAPTIONS for _ in seeds], seed=[s for _ in CAPTIONS for s in seeds])
  return _medians(list(audio.mean(axis=1)), pipeline.sample_rate)


def _validation(workdir: str) -> dict[str, float]:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [r for r in map(json.loads, f) if 'valid_loss' in r]
  first, last = rows[0], rows[-1]
  return {'valid_loss_before': first['valid_loss'], 'valid_loss_after': last['valid_loss'],
          'valid_accuracy_before': first['valid_accuracy'], 'valid_accuracy_after': last['valid_accuracy'],
          'steps': last['step'], 'params_trainable': first['params_trainable'],
          'optimizer_state': first['optimizer_state']}


def _full_params():
  config = default_model_finetune.get_config()
  config.data.dir = _DATA_DIR.value
  state, _ = trainer.restore_state(config, _FULL.value)
  return state.params


def main() -> None:
  seeds = [int(s) for s in _SEEDS.value]
  start = time.perf_counter()
  base = pretrained.load(default_model_finetune.DEFAULT_DIR, dtype='float32')
  corpus = read_split(_CORPUS.value, 'valid', base.sample_rate)
  loaders = {'base': lambda: base, 'full': lambda: dataclasses.replace(base, lm_params=_full_params()),
             'lora': lambda: pretrained.load(default_model_finetune.DEFAULT_DIR, dtype='float32',
                                             lora=os.path.join(_LORA.value, 'lora.safetensors'))}
  reference = _medians(corpus.audio, corpus.sample_rate)
  results = {'captions': CAPTIONS, 'seeds': seeds, 'style_clips': reference,
             'generated': {name: _generated(loaders[name](), seeds) for name in _MODELS.value},
             'validation': {name: _validation(workdir) for name, workdir in (('full', _FULL.value),
                                                                            ('lora', _LORA.value)) if workdir}}
  results['seconds'] = round(time.perf_counter() - start, 1)
  print(f'{"":12s}' + ''.join(f'{name:>14s}' for name in STATS))
  for name, row in [('style clips', reference), *results['generated'].items()]:
    print(f'{name:12s}' + ''.join(f'{row[s]:14.4g}' for s in STATS))
  print(json.dumps(results['validation'], indent=1))
  text = json.dumps(results, indent=2) + '\n'
  atomic_write(_OUT.value, lambda tmp: open(tmp, 'w').write(text))


if __name__ == '__main__':
  runner.run('python -m benchmarks.finetune_style', main)
