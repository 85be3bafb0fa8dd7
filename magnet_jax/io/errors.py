"""The error every weight and config reader raises for a file that is missing, truncated or not what was expected."""


class CheckpointError(ValueError):
  """A checkpoint file that is missing, truncated, or not what the caller expects."""
