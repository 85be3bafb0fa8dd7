"""VGGish from a local torchvggish checkpoint: [128] per 0.96 s example, before the last ReLU (Google's FAD, the
MAGNeT paper's embedder)."""
import numpy as np

from magnet_jax.evaluation import vggish
from magnet_jax.evaluation.registry import Clips, ModelSpec, Option


class VggishModel:
  """Embedder at 16 kHz, in jitted batches of `batch_size` examples."""
  name = vggish.NAME
  sample_rate = vggish.SAMPLE_RATE

  def __init__(self, checkpoint: str, batch_size: int = 32, progress: bool = True):
    self.params = vggish.load(checkpoint)
    self.batch_size = batch_size
    self.progress = progress

  def embed(self, clips: Clips, desc: str = 'vggish') -> list[np.ndarray]:
    flat = vggish.embed(self.params, [audio for _, audio in clips], self.batch_size, desc, self.progress)
    ends = np.cumsum([vggish.example_count(len(audio)) for _, audio in clips])
    return np.split(flat, ends[:-1])


MODEL = ModelSpec(
    name='vggish', roles=('embedder',), load=VggishModel,
    summary='VGGish, the paper\'s FAD embedder ([128] per 0.96 s)',
    option=Option('vggish_checkpoint', 'file', 'torchvggish\'s vggish-10086976.pth (or a .safetensors / .npz of its '
                  'state dict), for --embedder vggish.'),
    stats_name=lambda path: vggish.NAME)
