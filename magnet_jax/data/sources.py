"""Picks the training data source named by `config.data.source`."""
import ml_collections

from magnet_jax.config import MagnetConfig
from magnet_jax.data.synthetic import SyntheticSource


def make_source(config: ml_collections.ConfigDict, model: MagnetConfig, process_index: int, process_count: int):
  """An iterator of this process's batches with get_state()/set_state() (its position, for checkpoints).

  Each process gets `train.batch_size / process_count` examples per step.
  """
  data = config.data
  local_batch = config.train.batch_size // process_count
  if data.source == 'synthetic':
    return SyntheticSource(
        local_batch, num_examples=data.num_examples, n_q=model.n_q, card=model.card,
        length=data.length or model.sequence_length, text_len=data.text_len, text_dim=model.text_dim,
        seed=config.train.seed + 1000 * process_index)
  raise ValueError(f"data.source={data.source!r}; expected 'synthetic'")
