"""Part of the 8-device run (tests/multidevice.py, checked by tests/parallel/test_sharding.py).

Trains the tiny config for a few steps on several meshes with the same data and seed; main() returns
{mesh name: [loss per step], ...} plus the final params' max abs difference to the 1-device run.
"""
import json
import sys

import jax
import numpy as np

sys.path.insert(0, '.')
from magnet_jax.configs import tiny  # noqa: E402
from magnet_jax.parallel.sharding import make_mesh, rules_for  # noqa: E402
from magnet_jax.training.optim import make_optimizer  # noqa: E402
from magnet_jax.training.trainer import create_state, make_train_step, state_shardings, validate  # noqa: E402
from tests.helpers import MESHES, synthetic_losses  # noqa: E402

STEPS = 4


def run(shape, preset, num_devices):
  config = tiny.get_config()
  config.train.batch_size = 8
  model = validate(config)
  mesh = make_mesh(shape, jax.devices()[:num_devices])
  rules = rules_for(preset)
  optimizer = make_optimizer(config.optim, config.train.num_steps)
  shardings = state_shardings(model, optimizer, mesh, rules, ema=False)
  state = create_state(model, optimizer, jax.random.key(0), shardings, ema=False)
  step = make_train_step(model, optimizer, config, mesh, rules, shardings)
  state, losses = synthetic_losses(step, state, model, mesh, STEPS)
  return losses, jax.device_get(state.params), list(state.params['transformer']['layers']['mlp']['wi'].sharding.spec)


def main():
  assert jax.device_count() == 8, jax.device_count()
  results, reference = {}, None
  for name, args in MESHES.items():
    losses, params, sharding = run(*args)
    reference = reference or params
    diff = max(float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reference),
                                                          strict=True))
    results[name] = {'losses': losses, 'param_diff': diff, 'mlp_sharding': sharding}
  return results


if __name__ == '__main__':
  print(json.dumps(main()))
