"""A WAV stream: 16-bit PCM written chunk by chunk to any binary file, a pipe included (`| aplay`, `| ffplay -`).

The header goes first with the largest sizes a RIFF file can state, which players of a stream read as "until the
end"; where the file can seek, `close` writes the true sizes, so a finished file is an ordinary WAV. 16-bit PCM
because every player of a pipe reads it (aplay plays no float WAV).
"""
import struct
from typing import BinaryIO

import numpy as np

HEADER_BYTES = 44
_UNKNOWN = 0xFFFFFFFF  # RIFF's largest size: what a stream of unknown length states


def header(sample_rate: int, channels: int, data_bytes: int = _UNKNOWN - HEADER_BYTES + 8) -> bytes:
  """The 44-byte header of a 16-bit PCM WAV of `data_bytes` bytes of samples (default: unknown, the largest)."""
  block = 2 * channels
  return (b'RIFF' + struct.pack('<I', data_bytes + HEADER_BYTES - 8) + b'WAVEfmt '
          + struct.pack('<IHHIIHH', 16, 1, channels, sample_rate, sample_rate * block, block, 16)
          + b'data' + struct.pack('<I', data_bytes))


def pcm16(audio: np.ndarray) -> bytes:
  """[C, n] float samples -> interleaved little-endian 16-bit PCM (clipped to [-1, 1])."""
  return (np.clip(np.asarray(audio, np.float32).T, -1, 1) * 32767).round().astype('<i2').tobytes()


class WavStream:
  """Writes `header`, then each `write` ([C, n] float) flushed at once; `close` writes the true sizes if it can."""

  def __init__(self, file: BinaryIO, sample_rate: int, channels: int):
    self.file, self.sample_rate, self.channels = file, sample_rate, channels
    self.data_bytes = 0
    file.write(header(sample_rate, channels))
    file.flush()

  @property
  def seconds(self) -> float:
    return self.data_bytes / (2 * self.channels * self.sample_rate)

  def write(self, audio: np.ndarray) -> None:
    if audio.shape[0] != self.channels:
      raise ValueError(f'a {self.channels}-channel stream got {audio.shape[0]} channels')
    data = pcm16(audio)
    self.file.write(data)
    self.file.flush()
    self.data_bytes += len(data)

  def close(self) -> None:
    """Writes the true sizes where the file can seek (a pipe keeps the stream's header), and flushes."""
    if self.file.seekable():
      self.file.seek(0)
      self.file.write(header(self.sample_rate, self.channels, self.data_bytes))
      self.file.seek(0, 2)
    self.file.flush()
