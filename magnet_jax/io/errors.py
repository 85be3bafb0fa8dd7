"""Errors the commands report in one line: bad checkpoint files (every weight and config reader raises
`CheckpointError`) and generations cancelled by their user (`Cancelled`)."""


class CheckpointError(ValueError):
  """A checkpoint file that is missing, truncated, or not what the caller expects."""


class Cancelled(Exception):
  """A generation stopped between decoding steps by its progress callback (`MagnetPipeline`'s `on_step`); nothing
  of it is returned or written."""
