"""Evaluation models by name: discovery, the Protocol of each role, flags defined from the registry, bad names."""
import numpy as np
import pytest
from absl import flags

from magnet_jax.evaluation import quality, registry


def test_every_model_is_found_with_valid_roles():
  specs = registry.specs()
  assert set(specs) == {'ast', 'clap', 'encodec', 'musicnn', 'vggish'}
  assert registry.names('embedder') == ['encodec', 'musicnn', 'vggish']
  assert registry.names('classifier') == ['ast', 'musicnn'] and registry.names('scorer') == ['clap']
  assert set(registry.options()) == {'vggish_checkpoint', 'ast_folder', 'clap_folder', 'encodec_folder'}
  for role, name in registry.DEFAULTS.items():
    assert role in registry.get(name).roles


def test_a_loaded_model_satisfies_its_roles_protocols():
  protocols = {'embedder': registry.Embedder, 'classifier': registry.Classifier, 'scorer': registry.Scorer}
  model = registry.get('musicnn').load(None, batch_size=4, progress=False)
  assert all(isinstance(model, protocols[role]) for role in registry.get('musicnn').roles)
  per_clip, probs = model.embed_and_classify([('a', np.zeros(16000 * 4, np.float32))])
  assert per_clip[0].shape == (2, 200) and probs.shape == (1, 50)


def test_unknown_names_are_one_line():
  with pytest.raises(ValueError, match="unknown classifier 'vggish'; choose among ast, musicnn"):
    registry.get('vggish', 'classifier')
  with pytest.raises(ValueError, match="unknown evaluation model 'x'; choose among ast, clap, encodec, musicnn"):
    registry.get('x')


def test_flags_come_from_the_registry():
  values = flags.FlagValues()
  read = registry.define_flags(values)
  values(['prog', '--embedder=vggish', '--vggish-checkpoint=/v.pth'])
  assert read() == {'embedder': 'vggish', 'classifier': 'musicnn', 'scorer': 'clap', 'vggish_checkpoint': '/v.pth',
                    'ast_folder': None, 'clap_folder': None, 'encodec_folder': None}
  assert 'encodec' in values['embedder'].help and values['embedder'].parser.enum_values == registry.names('embedder')
  with pytest.raises(FileNotFoundError, match='--vggish-checkpoint: no such file: /v.pth'):
    quality.choose_models(('fad',), **read())
