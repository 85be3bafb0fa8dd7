"""CLAP (transformers' ClapModel, e.g. laion/larger_clap_music) from a local folder: the cosine of each clip's
audio embedding and its text's, audiocraft's clap_consistency."""
from magnet_jax.evaluation.registry import ModelSpec, Option


def _load(folder: str, batch_size: int = 32, progress: bool = True):
  from magnet_jax.evaluation.clap import ClapScorer
  return ClapScorer(folder, progress=progress)


MODEL = ModelSpec(
    name='clap', roles=('scorer',), load=_load, summary='CLAP (a non-fused ClapModel folder)',
    option=Option('clap_folder', 'folder', 'CLAP model folder (transformers layout), for --metrics ...,clap.'))
