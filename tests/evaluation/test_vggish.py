"""VGGish in JAX against torchvggish's network (reference/vggish.py) with random weights."""
import numpy as np
import pytest

from magnet_jax.evaluation import vggish

torch = pytest.importorskip('torch')
from reference.vggish import VGG  # noqa: E402


def test_vggish_parity_with_torch():
  torch.manual_seed(0)
  model = VGG().eval()
  for m in model.modules():  # larger weights than torch's init so that the ReLUs do not zero most features
    if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
      torch.nn.init.normal_(m.weight, std=(2.0 / m.weight[0].numel()) ** 0.5)
      torch.nn.init.normal_(m.bias, std=0.1)
  examples = np.random.default_rng(0).normal(size=(2, 96, 64)).astype(np.float32)
  with torch.no_grad():
    expected = model(torch.from_numpy(examples)[:, None]).numpy()
  params = vggish.from_torch_state_dict({k: v.numpy() for k, v in model.state_dict().items()})
  got = np.asarray(vggish.network(params, examples))
  assert got.shape == (2, 128) and (expected > 0).mean() > 0.2
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
