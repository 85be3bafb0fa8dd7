"""How well a codec reconstructs held-out corpus clips, and whether its tokens keep what prompts control.

  python -m magnet_jax.apps.codec_evaluate [--codec DIR] [--split test --seed 0 --num-clips 2000]

prints a JSON report: the mean `mel_distance` of decode(encode(x)) against x, overall and per group (category,
'solo <instrument>'), and per group the mean onset rate and spectral centroid of the references and of the
reconstructions. The default codec is the embedded one (magnet_jax/assets/default/codec).
"""
from collections import defaultdict

import numpy as np

from magnet_jax.audio.spectral import mel_distance
from magnet_jax.audio.stats import onset_rate, spectral_centroid
from magnet_jax.codec.config import CodecConfig
from magnet_jax.codec.model import Params, decode, encode
from magnet_jax.corpus.clips import ClipSet


def reconstruct_clips(config: CodecConfig, params: Params, clips: ClipSet, batch_size: int = 8) -> list[np.ndarray]:
  """decode(encode(x)) of every clip [N_i] -> [N_i] float32, in batches of equal-length clips."""
  out: list[np.ndarray | None] = [None] * len(clips.audio)
  by_length = defaultdict(list)
  for i, audio in enumerate(clips.audio):
    by_length[len(audio)].append(i)
  for length, indices in by_length.items():
    for start in range(0, len(indices), batch_size):
      chunk = indices[start:start + batch_size]
      batch = np.stack([clips.audio[i] for i in chunk])[:, None, :]  # [b, 1, N]
      decoded = np.asarray(decode(params, encode(params, batch, config), config))[:, 0, :length]
      for i, audio in zip(chunk, decoded, strict=True):
        out[i] = audio
  return out


def mean_mel_distance(config: CodecConfig, params: Params, clips: ClipSet) -> float:
  """Mean mel_distance (dB) of the reconstructions of `clips`."""
  recon = reconstruct_clips(config, params, clips)
  return float(np.mean([mel_distance(x, y, clips.sample_rate) for x, y in zip(clips.audio, recon, strict=True)]))


def report(config: CodecConfig, params: Params, clips: ClipSet) -> dict:
  """Reconstruction quality and prompt-relevant statistics of `clips`, overall and per group.

  Returns:
    {'num_clips', 'mel_distance', 'groups': {group: {'count', 'mel_distance', 'onset_rate': [ref, recon],
    'centroid_hz': [ref, recon]}}}, every number a mean over the group's clips.
  """
  rate = clips.sample_rate
  rows = defaultdict(list)
  for x, y, group in zip(clips.audio, reconstruct_clips(config, params, clips), clips.groups, strict=True):
    rows[group].append((mel_distance(x, y, rate), onset_rate(x, rate), onset_rate(y, rate),
                        spectral_centroid(x, rate), spectral_centroid(y, rate)))
  groups = {}
  for group, values in sorted(rows.items()):
    mean = np.mean(values, axis=0)
    groups[group] = {'count': len(values), 'mel_distance': round(float(mean[0]), 2),
                     'onset_rate': [round(float(v), 2) for v in mean[1:3]],
                     'centroid_hz': [round(float(v)) for v in mean[3:5]]}
  overall = np.mean([v[0] for values in rows.values() for v in values])
  return {'num_clips': len(clips.audio), 'mel_distance': round(float(overall), 2), 'groups': groups}

