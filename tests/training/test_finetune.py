"""Fine-tuning: init from released / exported checkpoints, freezing, LoRA, validation (tiny configs, CPU)."""
import json
import os

import jax
import numpy as np
import pytest
from flax import traverse_util

torch = pytest.importorskip('torch')

from magnet_jax.data.synthetic import SyntheticSource  # noqa: E402
from magnet_jax.generation import lora, pretrained, random_pipeline  # noqa: E402
from magnet_jax.io.audiocraft import load_audiocraft_lm  # noqa: E402
from magnet_jax.io.errors import CheckpointError  # noqa: E402
from magnet_jax.models import MagnetLM  # noqa: E402
from magnet_jax.models.config import MagnetConfig  # noqa: E402
from magnet_jax.models.params import init_params, logical_axes  # noqa: E402
from magnet_jax.parallel.sharding import make_mesh, param_shardings, rules_for  # noqa: E402
from magnet_jax.training import trainer  # noqa: E402
from magnet_jax.training.finetune import ADAPTER_FILE, FineTune  # noqa: E402
from magnet_jax.training.lora import init_adapters, target_paths  # noqa: E402
from magnet_jax.training.loss import masked_level_loss  # noqa: E402
from magnet_jax.training.optim import make_optimizer  # noqa: E402
from magnet_jax.training.validation import Validator  # noqa: E402
from reference import audiocraft_lm  # noqa: E402
from tests.helpers import load_config, restore_state  # noqa: E402

# The released model's architecture; the run's config must match it (tiny.py has text_dim 16).
RELEASED = MagnetConfig(dim=64, num_heads=4, num_layers=2, card=32, text_dim=16, segment_duration=1.0)
DESCRIPTIONS = ['calm piano', None]
SHORT = {'train.num_steps': 2, 'train.log_every': 1, 'train.checkpoint_every': 2, 'train.batch_size': 4,
         'data.num_examples': 4}


def _flat(tree):
  return traverse_util.flatten_dict(jax.device_get(tree), sep='/')


@pytest.fixture(scope='module')
def released(tmp_path_factory):
  """A random audiocraft MagnetLMModel saved in the released layout: (torch model, folder, cond, cond_mask)."""
  folder = tmp_path_factory.mktemp('released')
  model, _, _, cond, cond_mask = audiocraft_lm.released_pair(RELEASED, DESCRIPTIONS, str(folder / 'state_dict.bin'))
  return model, str(folder), cond, cond_mask


@pytest.fixture(scope='module')
def full_run(released, tmp_path_factory):
  """2 steps of full fine-tuning from the released folder, cross-attention only trainable."""
  workdir = tmp_path_factory.mktemp('full')
  config = load_config('tiny', **SHORT, **{'init.source': released[1], 'train.trainable': ('cross_attention',)})
  summary = trainer.train(config, str(workdir))
  return config, str(workdir), summary


@pytest.fixture(scope='module')
def lora_run(tmp_path_factory):
  """4 LoRA steps on a random exported pipeline (MiniLM width), with validation every 2 steps."""
  exported = str(tmp_path_factory.mktemp('exported'))
  random_pipeline.export(exported)
  workdir = str(tmp_path_factory.mktemp('lora'))
  config = load_config('tiny', **{**SHORT, 'train.num_steps': 4, 'train.checkpoint_every': 2}, **{
      'model.text_dim': 384, 'init.source': exported, 'lora.rank': 4, 'optim.lr': 3e-2, 'eval.every': 2,
      'eval.num_examples': 6, 'eval.batch_size': 4})
  summary = trainer.train(config, workdir)
  return config, exported, workdir, summary


def _rows(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def test_init_from_released_matches_audiocraft_and_first_loss(released, full_run):
  torch_model, folder, cond, cond_mask = released
  config, workdir, summary = full_run
  _, converted = load_audiocraft_lm(folder)
  # the run's step-0 params are the converted ones, whose logits are audiocraft's
  model = trainer.validate(config)
  tuning = FineTune(config, model)
  optimizer = tuning.optimizer(make_optimizer(config.optim, 2))
  mesh = make_mesh(config.sharding.mesh)
  shardings = trainer.state_shardings(model, optimizer, mesh, rules_for('data_parallel'), False)
  make = lambda rng: trainer.create_state(model, optimizer, rng, shardings, False)
  state = tuning.initial_state(make, jax.random.key(0), shardings)
  for path, value in _flat(converted).items():
    np.testing.assert_array_equal(_flat(state.params)[path], value, err_msg=path)
  codes = np.random.default_rng(0).integers(0, RELEASED.card + 1, size=(2, RELEASED.n_q, 36))  # as test_lm_parity
  got = np.asarray(jax.jit(lambda p: MagnetLM(model).apply({'params': p}, codes, cond, cond_mask, level=1))(
      state.params))
  with torch.no_grad():
    tensors = audiocraft_lm.condition_tensors(torch_model, DESCRIPTIONS)
    expected = torch_model(torch.as_tensor(codes), [], tensors, stage=1).numpy()
  assert np.abs(got - expected).max() <= 1e-4
  # the first step's loss is the loss of the converted params on the first batch with the step's randomness
  source = SyntheticSource(4, num_examples=4, n_q=model.n_q, card=model.card, length=model.sequence_length,
                           text_len=config.data.text_len, text_dim=model.text_dim, seed=0)
  step_rng = jax.random.split(jax.random.key(config.train.seed))[1]
  def loss_fn(params, batch):
    level_logits = lambda c, s, m, level: MagnetLM(model).apply({'params': params}, c, s, m, level,
                                                                method=MagnetLM.level_logits)
    return masked_level_loss(level_logits, batch, jax.random.fold_in(step_rng, 0), model, config.train.cfg_dropout)
  loss, _ = jax.jit(loss_fn)(converted, next(source))
  first = next(r for r in _rows(workdir) if r['step'] == 1)
  assert first['loss'] == pytest.approx(float(loss), rel=1e-6)


def test_frozen_params_unchanged_and_no_optimizer_state(released, full_run):
  config, workdir, _ = full_run
  _, converted = load_audiocraft_lm(released[1])
  state, _ = restore_state(workdir, config)
  changed = 0
  for path, value in _flat(state.params).items():
    if 'cross_attention' in path:
      changed += not np.array_equal(value, _flat(converted)[path])
    else:
      np.testing.assert_array_equal(value, _flat(converted)[path], err_msg=path)
  assert changed == 4  # cross_attention/{query,key,value,out}
  trainable = sum(v.size for p, v in _flat(state.params).items() if 'cross_attention' in p)
  opt_elements = sum(np.size(x) for x in jax.tree.leaves(state.opt_state))
  assert trainable < opt_elements <= 2 * trainable + 8  # Adam's two moments, plus step counters
  start = _rows(workdir)[0]
  assert start['params_trainable'] == trainable and start['optimizer_state'] == opt_elements


def test_lora_at_init_is_the_base_model_exactly():
  params = init_params(RELEASED, jax.random.key(0))
  adapters = init_adapters(params, lora.LoraConfig(4, 8.0), jax.random.key(1))
  merged = lora.merge(params, adapters, 2.0)
  for path, value in _flat(params).items():
    np.testing.assert_array_equal(_flat(merged)[path], value, err_msg=path)


def test_lora_run_checkpoints_adapters_only_and_exports_them(lora_run):
  config, exported, workdir, _ = lora_run
  state, _ = restore_state(workdir, config)
  base = pretrained.load(exported, dtype='float32')
  adapters = lora.load_adapter(os.path.join(workdir, ADAPTER_FILE))[0]
  kernels = lora.flat_adapters(adapters)
  assert set(lora.flat_adapters(state.params)) == set(kernels) == set(target_paths(base.lm_params, lora.TARGET_GROUPS))
  for path, value in _flat(adapters).items():  # the file holds the checkpoint's adapters, b trained away from 0
    np.testing.assert_array_equal(value, _flat(state.params)[path])
  assert any(np.abs(ab['b']).max() > 0 for ab in kernels.values())
  base_bytes = sum(v.nbytes for v in _flat(base.lm_params).values())
  assert os.path.getsize(os.path.join(workdir, ADAPTER_FILE)) < 0.25 * base_bytes
  # the exported base is untouched (bit-identical to the random pipeline it was built from)
  rebuilt = random_pipeline.build()
  for path, value in _flat(rebuilt.lm_params).items():
    np.testing.assert_array_equal(_flat(base.lm_params)[path], value, err_msg=path)
  rows = _rows(workdir)
  assert rows[0]['params_trainable'] == sum(np.size(x) for x in jax.tree.leaves(state.params))
  assert rows[0]['params_frozen'] == sum(v.size for v in _flat(base.lm_params).values())


def test_lora_merged_and_unmerged_logits_agree(lora_run, tmp_path):
  """Logits of the run's adapters applied in the step (merged inside jit from the checkpoint), of
  `pretrained.load(lora=...)` and of the merge_lora command's plain folder agree; scale 0 is the base."""
  config, exported, workdir, _ = lora_run
  state, _ = restore_state(workdir, config)
  model = trainer.validate(config)
  base = pretrained.load(exported, dtype='float32')
  tuning = FineTune(config, model)
  in_step = jax.jit(tuning.full_params)(state.params, base.lm_params)
  adapter = os.path.join(workdir, ADAPTER_FILE)
  loaded = pretrained.load(exported, lora=adapter, dtype='float32')
  codes = np.random.default_rng(0).integers(0, model.card + 1, size=(2, model.n_q, 30))
  cond, cond_mask = base.text_encoder.encode(['calm piano', 'fast drums'])
  apply = jax.jit(lambda p: MagnetLM(model).apply({'params': p}, codes, cond, cond_mask, level=2))
  reference = np.asarray(apply(in_step))
  assert np.abs(np.asarray(apply(loaded.lm_params)) - reference).max() <= 1e-5
  assert np.abs(np.asarray(apply(base.lm_params)) - reference).max() > 1e-4  # the adapters do something
  off = pretrained.load(exported, lora=adapter, lora_scale=0.0, dtype='float32')
  np.testing.assert_array_equal(np.asarray(apply(off.lm_params)), np.asarray(apply(base.lm_params)))
  pretrained.merge_adapters(exported, [adapter], tmp_path / 'merged')
  merged = pretrained.load(str(tmp_path / 'merged'), dtype='float32')
  assert np.abs(np.asarray(apply(merged.lm_params)) - reference).max() <= 1e-5


def test_validation_is_fixed_across_reruns_and_resume(lora_run, tmp_path):
  config, _, workdir, _ = lora_run
  rows = {r['step']: r for r in _rows(workdir) if 'valid_loss' in r}
  assert sorted(rows) == [0, 2, 4]
  assert rows[4]['valid_loss'] != rows[0]['valid_loss']  # the adapters changed the model
  # stop at step 2, resume to 4: the same validation numbers
  resumed = str(tmp_path / 'resumed')
  trainer.train(_with(config, **{'train.num_steps': 2}), resumed)
  trainer.train(config, resumed, resume=True)
  again = {r['step']: r for r in _rows(resumed) if 'valid_loss' in r}
  for step in (2, 4):
    assert again[step]['valid_loss'] == pytest.approx(rows[step]['valid_loss'], abs=1e-6)
    assert again[step]['valid_accuracy_level_0'] == pytest.approx(rows[step]['valid_accuracy_level_0'], abs=1e-6)


def _with(config, **overrides):
  config = config.copy_and_resolve_references()
  for dotted, value in overrides.items():
    section, leaf = dotted.split('.')
    config[section][leaf] = value
  return config


def test_validator_rerun_is_identical():
  config = load_config('tiny', **{'eval.num_examples': 5, 'eval.batch_size': 2})
  model = trainer.validate(config)
  mesh = make_mesh({'data': 1, 'model': 1})
  params = init_params(model, jax.random.key(0))
  shardings = param_shardings(logical_axes(model), params, mesh, rules_for('data_parallel'))
  validator = Validator(config, model, mesh, rules_for('data_parallel'), shardings)
  first, second = validator(params), validator(params)
  assert first == second and 0 < first['valid_loss'] < 10


def _bad(config_overrides, match, exc=ValueError, workdir=None):
  config = load_config('tiny', **SHORT, **config_overrides)
  with pytest.raises(exc, match=match):
    trainer.train(config, workdir)


def test_bad_fine_tuning_options(released, tmp_path):
  folder = released[1]
  _bad({'init.source': str(tmp_path / 'nope')}, 'init.source not found', FileNotFoundError, str(tmp_path / 'a'))
  truncated = tmp_path / 'truncated'
  truncated.mkdir()
  data = open(os.path.join(folder, 'state_dict.bin'), 'rb').read()
  (truncated / 'state_dict.bin').write_bytes(data[:len(data) // 2])
  _bad({'init.source': str(truncated)}, 'truncated|corrupt|unreadable|not a', CheckpointError, str(tmp_path / 'b'))
  _bad({'init.source': folder, 'model.dim': 32}, r'model.dim=32 but the source has dim=64', ValueError,
       str(tmp_path / 'c'))
  _bad({'init.source': folder, 'model.card': 16}, r'model.card=16 but the source has card=32.*init.reinit',
       ValueError, str(tmp_path / 'd'))
  _bad({'lora.rank': 4, 'lora.targets': ('nothing_like_this',)}, r"lora.targets: 'nothing_like_this' matches no",
       ValueError, str(tmp_path / 'e'))
  _bad({'train.trainable': ('nothing_like_this',)}, r"train.trainable: 'nothing_like_this' matches no parameter",
       ValueError, str(tmp_path / 'f'))
  _bad({'lora.rank': 4, 'train.trainable': ('cross_attention',)}, 'cannot be combined with LoRA', ValueError,
       str(tmp_path / 'g'))
  _bad({'init.reinit': ('heads',)}, 'init.source, which is not set', ValueError, str(tmp_path / 'h'))
  _bad({'eval.every': 1, 'eval.mask_rates': (0.0,)}, r'eval.mask_rates must be rates in \(0, 1\]', ValueError,
       str(tmp_path / 'i'))
  with pytest.raises(CheckpointError, match='LoRA adapter file not found'):
    pretrained.load(random_pipeline_folder(tmp_path), lora=str(tmp_path / 'missing.safetensors'))


def random_pipeline_folder(tmp_path):
  folder = str(tmp_path / 'pipeline')
  if not os.path.isdir(folder):
    random_pipeline.export(folder)
  return folder


def test_reinit_replaces_mismatched_heads(released, tmp_path):
  """A different card with the heads and embeddings re-initialised: the rest comes from the source."""
  config = load_config('tiny', **{**SHORT, 'train.num_steps': 1, 'train.checkpoint_every': 1}, **{
      'init.source': released[1], 'model.card': 16, 'init.reinit': ('heads', 'embedder'),
      'train.trainable': ('heads', 'embedder')})
  trainer.train(config, str(tmp_path))
  state, _ = restore_state(str(tmp_path), config)
  _, converted = load_audiocraft_lm(released[1])
  params = _flat(state.params)
  assert params['heads/kernel'].shape == (4, 64, 16) and params['embedder/emb'].shape == (4, 17, 64)
  for path, value in _flat(converted).items():
    if not path.startswith(('heads', 'embedder')):
      np.testing.assert_array_equal(params[path], value, err_msg=path)
