"""Loudness normalisation of generated clips (`--normalize`).

Method: the integrated loudness of ITU-R BS.1770-4 (K-weighting, 400 ms blocks with 75 % overlap, absolute -70
LUFS and relative -10 LU gates), measured by pyloudnorm; the clip gets the gain that brings it to TARGET_LUFS
(-14 LUFS, the level streaming services play music at), lowered where needed so that its sample peak stays at
PEAK_CEILING_DB (-1 dBFS): normalising never clips, so a very dynamic clip can end below the target. A clip that
has no integrated loudness (shorter than one 400 ms block, or every block below the gates) is peak-normalised to
PEAK_CEILING_DB instead; digital silence is left as it is.
"""
import numpy as np

TARGET_LUFS = -14.0
PEAK_CEILING_DB = -1.0
BLOCK_SECONDS = 0.4  # BS.1770 gating block


def normalize(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, dict]:
  """audio [C, N] -> (normalised audio [C, N] float32, {'method', 'gain_db', 'loudness_lufs', 'target_lufs'})."""
  peak = float(np.abs(audio).max(initial=0.0))
  if peak == 0.0:
    return audio, {'method': 'none (silence)', 'gain_db': 0.0, 'loudness_lufs': None, 'target_lufs': TARGET_LUFS}
  loudness = -np.inf
  if audio.shape[-1] >= BLOCK_SECONDS * sample_rate:
    import pyloudnorm  # here, not at the top: it imports scipy.signal (a second), and every command imports this module
    with np.errstate(divide='ignore'):
      loudness = pyloudnorm.Meter(sample_rate, block_size=BLOCK_SECONDS).integrated_loudness(audio.T.astype(np.float64))
  headroom_db = PEAK_CEILING_DB - 20 * np.log10(peak)
  if np.isfinite(loudness):
    method, gain_db = 'bs1770', min(TARGET_LUFS - loudness, headroom_db)
  else:
    method, gain_db = 'peak', headroom_db
  return ((audio * 10 ** (gain_db / 20)).astype(np.float32),
          {'method': method, 'gain_db': round(float(gain_db), 3),
           'loudness_lufs': round(float(loudness), 3) if np.isfinite(loudness) else None, 'target_lufs': TARGET_LUFS})
