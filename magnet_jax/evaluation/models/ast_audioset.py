"""AST (transformers' ASTForAudioClassification, e.g. MIT/ast-finetuned-audioset-10-10-0.4593) from a local
folder: AudioSet label distributions for KL, in PaSST's place in audiocraft's kld."""
from magnet_jax.evaluation.registry import ModelSpec, Option


def _load(folder: str, batch_size: int = 32, progress: bool = True):
  from magnet_jax.evaluation.ast_classifier import AstClassifier
  return AstClassifier(folder, progress=progress)


MODEL = ModelSpec(
    name='ast', roles=('classifier',), load=_load, summary='AST, AudioSet classes',
    option=Option('ast_folder', 'folder', 'AST audio classifier folder (transformers layout), for --classifier ast.'))
