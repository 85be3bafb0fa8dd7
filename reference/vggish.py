"""torchvggish's VGGish network (harritaylor/torchvggish, vggish.py: VGG + make_layers) in PyTorch, for parity tests.

The same module layout and state-dict names as the original (features.N, embeddings.N), so the tests exercise the
state-dict mapping a real `vggish-10086976.pth` goes through.
"""
import torch
from torch import nn


def make_layers() -> nn.Sequential:
  layers, in_channels = [], 1
  for v in (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M'):
    if v == 'M':
      layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    else:
      layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
      in_channels = v
  return nn.Sequential(*layers)


class VGG(nn.Module):
  def __init__(self):
    super().__init__()
    self.features = make_layers()
    self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
                                    nn.ReLU(True), nn.Linear(4096, 128), nn.ReLU(True))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """[B, 1, 96, 64] -> [B, 128]."""
    x = self.features(x)
    # Transpose to the TF original's (N, H, W, C) order before flattening, as torchvggish does.
    x = torch.transpose(x, 1, 3)
    x = torch.transpose(x, 1, 2)
    x = x.contiguous().view(x.size(0), -1)
    return self.embeddings(x)
