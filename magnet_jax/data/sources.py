"""Picks the training data source named by `config.data.source`."""
import ml_collections

from magnet_jax.data.loader import make_tfds_source
from magnet_jax.data.synthetic import SyntheticSource
from magnet_jax.models.config import MagnetConfig


def make_source(config: ml_collections.ConfigDict, model: MagnetConfig, process_index: int, process_count: int):
  """An iterator of this process's batches with get_state()/set_state() (its position, for checkpoints).

  Args:
    config: the full config (`data` and `train` sections).
    model: the model config (codebooks, card, frames).
    process_index: which of the `process_count` parts of every global batch this process yields
      (`magnet_jax.parallel.sharding.batch_part`: the rows its devices hold).
    process_count: processes in the job; each yields `train.batch_size / process_count` examples per step.
  """
  data = config.data
  if data.source == 'synthetic':
    return SyntheticSource(
        config.train.batch_size, process_index, process_count, num_examples=data.num_examples, n_q=model.n_q,
        card=model.card, length=data.length or model.sequence_length, text_len=data.text_len,
        text_dim=model.text_dim, seed=config.train.seed)
  if data.source == 'tfds':
    return make_tfds_source(config, model, process_index, process_count)
  raise ValueError(f"data.source={data.source!r}; expected 'synthetic' or 'tfds'")
