"""Audio files in and out: reading, prompt audio as a batch in the codec's format, atomic (streamed) output files.

Shapes: B batch, C channels, N samples.
"""
import contextlib
import os
import re

import numpy as np
import soundfile
from absl import logging

from magnet_jax.audio.convert import convert
from magnet_jax.io import files

# --format -> (soundfile format, subtype): 24-bit PCM both (float WAV would carry a PEAK chunk with a timestamp,
# so the same samples would not give the same bytes).
FORMATS = {'wav': ('WAV', 'PCM_24'), 'flac': ('FLAC', 'PCM_24')}
# Channel counts above this are not audio channels: a 2-D array with a longer first axis is soundfile's [N, C].
MAX_CHANNELS = 8
# libsndfile's note on a WAV/AIFF whose data chunk is shorter than its header says (it then reads what is there).
_SHORT_DATA = re.compile(r'^data\s*:\s*(\d+) \(should be (\d+)\)', re.MULTILINE)


def duration(path: str | os.PathLike) -> float:
  """Seconds of audio in a file, read from its header only.

  Raises:
    FileNotFoundError: no such file.
    ValueError: not an audio file soundfile can read.
  """
  return _open(path, soundfile.info).duration


def read(path: str | os.PathLike) -> tuple[np.ndarray, int]:
  """(audio [C, N] float32, sample rate) of an audio file; errors as `duration`. A file shorter than its header
  says (a truncated WAV) is read as far as it goes, with a warning."""
  def reader(path):
    with soundfile.SoundFile(path) as f:
      audio = f.read(dtype='float32', always_2d=True)
      match = _SHORT_DATA.search(f.extra_info)
      if match or len(audio) < f.frames:
        claimed = f'{int(match[1])} bytes of samples' if match else f'{f.frames} frames'
        logging.warning('%s is truncated: its header promises %s; read the %.3f s that are there', path, claimed,
                        len(audio) / f.samplerate)
      return audio.T, f.samplerate
  return _open(path, reader)


def check_finite(path: str | os.PathLike, block_frames: int = 1 << 16) -> None:
  """Reads an audio file block by block (bounded memory) to check that every sample is finite.

  Raises:
    FileNotFoundError / ValueError: as `duration`, or a NaN or infinite sample (named with its time).
  """
  def reader(path):
    with soundfile.SoundFile(path) as f:
      done = 0
      for block in f.blocks(block_frames, dtype='float32', always_2d=True):
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
          raise ValueError(f'{path} holds non-finite samples (NaN or inf), the first at '
                           f'{(done + int(np.argmax(bad))) / f.samplerate:.3f} s: audio must be finite')
        done += len(block)
  _open(path, reader)


def _open(path, reader):
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'audio file not found: {path}')
  try:
    return reader(path)
  except (soundfile.SoundFileError, RuntimeError) as e:  # libsndfile errors; RuntimeError: a decoder that gave up
    raise ValueError(f'cannot read audio file {path}: {e}') from e


def to_batch(audio: np.ndarray, sample_rate: int, target_rate: int, channels: int) -> np.ndarray:
  """Any audio -> [B, C, N] float32 at `target_rate` with `channels` channels (`convert.convert` per example).

  Args:
    audio: [N] (mono), [C, N] or [B, C, N]: channels first. soundfile's [N, C] (or [B, N, C]) is recognised and
      transposed when its last axis is shorter than its other one and at most `MAX_CHANNELS` long; any other shape
      whose channel axis is longer than its sample axis is ambiguous and refused. Float or signed integer PCM
      samples (see `convert.convert`).

  Raises:
    ValueError: another rank, an ambiguous shape, or what `convert.convert` refuses.
  """
  audio = np.asarray(audio)
  audio = audio.reshape((1,) * (3 - audio.ndim) + audio.shape) if audio.ndim < 3 else audio
  if audio.ndim != 3:
    raise ValueError(f'audio must be [N], [C, N] or [B, C, N], got shape {audio.shape}')
  first, last = audio.shape[1:]
  if first > last:
    if last > MAX_CHANNELS:
      raise ValueError(f'audio of shape {audio.shape} is ambiguous: pass channels first, [C, N] or [B, C, N] '
                       f'(an [N, C] array is recognised when C <= {MAX_CHANNELS})')
    audio = audio.swapaxes(1, 2)  # soundfile's [N, C]
  return np.stack([convert(example, sample_rate, target_rate, channels) for example in audio])


class AtomicAudioFile:
  """An output audio file written in chunks to a hidden temporary file beside it, renamed into place by `publish`
  (removed by `abort`), so the path never holds a partial file. Chunks are kept as 32-bit float WAV; `finish`
  converts to the final format, optionally through `transform` (loudness normalisation needs the whole clip).

  Write errors raise OSError naming the file (ENOSPC: 'no space left on device writing PATH'); soundfile's own
  report of a failed write is a bare 'System error'.
  """

  def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int):
    self.path, self.sample_rate = os.fspath(path), sample_rate
    self._tmp = files.temporary_beside(self.path)
    with self._errors():
      self._file = soundfile.SoundFile(self._tmp, 'w', sample_rate, channels, 'FLOAT', format='WAV')
    self.samples = 0

  def write(self, audio: np.ndarray) -> None:
    """Appends [C, n] samples."""
    with self._errors():
      self._file.write(np.asarray(audio, np.float32).T)
    self.samples += audio.shape[-1]

  def finish(self, file_format: str, transform=None) -> dict:
    """Closes and converts the temporary file to `file_format` (a FORMATS key; samples clipped to [-1, 1]), ready
    to `publish`.

    Args:
      file_format: 'wav' or 'flac'.
      transform: optional (audio [C, N], sample_rate) -> (audio, info dict), applied to the whole clip.

    Returns:
      {'peak': max |sample| before clipping, 'clipped': samples clipped, **transform's info}.
    """
    container, subtype = FORMATS[file_format]
    with self._errors():
      self._file.close()
      audio = soundfile.read(self._tmp, dtype='float32', always_2d=True)[0].T
      audio, info = (audio, {}) if transform is None else transform(audio, self.sample_rate)
      info = {'peak': float(np.abs(audio).max(initial=0.0)), 'clipped': int(np.sum(np.abs(audio) > 1.0)), **info}
      soundfile.write(self._tmp, np.clip(audio, -1.0, 1.0).T, self.sample_rate, subtype=subtype, format=container)
    return info

  def publish(self) -> None:
    """Renames the finished file into place."""
    files.publish(self._tmp, self.path)

  def abort(self) -> None:
    """Drops the temporary file (after an error or an interruption)."""
    self._file.close()
    files.discard(self._tmp)

  @contextlib.contextmanager
  def _errors(self):
    try:
      yield
    except (OSError, soundfile.SoundFileError) as e:
      raise files.write_error(e, self.path) from e
