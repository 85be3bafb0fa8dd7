"""Part of the 8-device run (tests/multidevice.py, checked by tests/parallel/test_sharding.py).

LoRA training for a few steps and validation of the result on several meshes and presets, with the same data and
seeds; main() returns {mesh name: {'losses', 'valid', 'adapter_diff', 'adapter_sharding'}}.
"""
import json
import sys

import jax
import numpy as np

sys.path.insert(0, '.')
from magnet_jax.configs import tiny  # noqa: E402
from magnet_jax.parallel.sharding import make_mesh, rules_for  # noqa: E402
from magnet_jax.training.finetune import FineTune  # noqa: E402
from magnet_jax.training.optim import make_optimizer  # noqa: E402
from magnet_jax.training.trainer import create_state, make_train_step, state_shardings, validate  # noqa: E402
from magnet_jax.training.validation import Validator  # noqa: E402
from tests.helpers import MESHES, synthetic_losses  # noqa: E402

STEPS = 3


def run(shape, preset, num_devices):
  config = tiny.get_config()
  config.train.batch_size = 8
  config.lora.rank = 4
  config.optim.lr = 3e-2
  config.eval.update(num_examples=6, batch_size=8)
  model = validate(config)
  tuning = FineTune(config, model)
  mesh = make_mesh(shape, jax.devices()[:num_devices])
  rules = rules_for(preset)
  optimizer = tuning.optimizer(make_optimizer(config.optim, config.train.num_steps))
  shardings = state_shardings(model, optimizer, mesh, rules, ema=False, params_fn=tuning.params_fn)
  state = create_state(model, optimizer, jax.random.key(0), shardings, ema=False, params_fn=tuning.params_fn)
  base = tuning.base(mesh, rules, jax.random.key(3))
  step = make_train_step(model, optimizer, config, mesh, rules, shardings, tuning, base)
  state, losses = synthetic_losses(step, state, model, mesh, STEPS)
  base_shardings = tuning.base_shardings(mesh, rules)
  full = jax.jit(tuning.full_params, out_shardings=base_shardings)(state.params, base)
  valid = Validator(config, model, mesh, rules, base_shardings)(full)
  wi = state.params['transformer']['layers']['mlp']['wi']['a']
  return losses, valid, jax.device_get(state.params), list(wi.sharding.spec)


def main():
  assert jax.device_count() == 8, jax.device_count()
  results, reference = {}, None
  for name, args in MESHES.items():
    losses, valid, adapters, sharding = run(*args)
    reference = reference or adapters
    diff = max(float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(adapters), jax.tree.leaves(reference),
                                                          strict=True))
    results[name] = {'losses': losses, 'valid': valid, 'adapter_diff': diff, 'adapter_sharding': sharding}
  return results


if __name__ == '__main__':
  print(json.dumps(main()))
