"""EnCodec reconstruction losses in JAX: waveform L1, multi-scale mel spectrogram, RVQ commitment.

The spectrogram loss is audiocraft's `MultiScaleMelSpectrogramLoss` (losses/specloss.py): for n_fft = 2 ** i,
i in [range_start, range_end), hop n_fft // 4, an L1 on linear mel power plus an MSE on log10(floor + mel power),
with torchaudio's framing (reflect padding, no centring, Hann window, HTK mel filters from f_min).

Shapes: B batch, N samples, F frames, M mel bands, T code frames, D latent dim, K codebooks.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from magnet_jax.audio.spectral import mel_filterbank
from magnet_jax.codec.conv import extra_padding


def frames(audio: jax.Array, n_fft: int, hop: int) -> jax.Array:
  """Overlapping windows of audio [B, N] -> [B, F, n_fft], F = (N - n_fft) / hop + 1.

  Needs hop to divide both n_fft and N - n_fft (callers pad); built from hop-sized blocks with slices, so the
  backward pass is a sum of pads rather than a scatter.
  """
  blocks = audio.reshape(audio.shape[0], -1, hop)  # [B, N / hop, hop]
  per_window = n_fft // hop
  count = blocks.shape[1] - per_window + 1
  return jnp.concatenate([blocks[:, j:j + count] for j in range(per_window)], axis=-1)


@functools.cache
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, f_min: float) -> np.ndarray:
  return mel_filterbank(sample_rate, n_fft, n_mels, fmin=f_min).T.astype(np.float32)  # [n_fft // 2 + 1, M]


def mel_power(audio: jax.Array, sample_rate: int, n_fft: int, n_mels: int, f_min: float,
              normalized: bool) -> jax.Array:
  """audiocraft `MelSpectrogramWrapper` with log=False: audio [B, N] -> mel power [B, F, M], F = ceil(N / hop).

  Args:
    audio: [B, N] waveforms.
    sample_rate: Hz.
    n_fft: window and FFT size (a multiple of 4); the hop is n_fft // 4.
    n_mels: mel bands M.
    f_min: lowest mel filter edge in Hz (the highest is Nyquist).
    normalized: divide the STFT by the window's L2 norm (torchaudio `normalized=True`).
  """
  hop = n_fft // 4
  side = (n_fft - hop) // 2
  audio = jnp.pad(audio, ((0, 0), (side, side)), mode='reflect')
  audio = jnp.pad(audio, ((0, 0), (0, extra_padding(audio.shape[1], n_fft, hop, 0))))
  window = jnp.asarray(np.hanning(n_fft + 1)[:-1], jnp.float32)  # periodic Hann, torch.hann_window
  spectrum = jnp.fft.rfft(frames(audio, n_fft, hop) * window, axis=-1)
  power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
  if normalized:
    power = power / jnp.sum(window ** 2)
  return power @ _mel_basis(sample_rate, n_fft, n_mels, f_min)


def multiscale_mel_loss(estimate: jax.Array, reference: jax.Array, sample_rate: int, range_start: int = 6,
                        range_end: int = 11, n_mels: int = 64, f_min: float = 64.0, normalized: bool = True,
                        alphas: bool = False, floor_level: float = 1e-5) -> jax.Array:
  """audiocraft `MultiScaleMelSpectrogramLoss` (config keys `msspec.*`): scalar loss of audio [B, C, N] pairs.

  Args:
    estimate: [B, C, N] reconstruction.
    reference: [B, C, N] target.
    sample_rate: Hz.
    range_start: log2 of the smallest n_fft.
    range_end: log2 of the largest n_fft, exclusive.
    n_mels: mel bands per scale.
    f_min: lowest mel frequency in Hz.
    normalized: window-normalised STFTs, and the sum over scales divided by the sum of its weights.
    alphas: weigh scale i's log-mel MSE by sqrt(2 ** i - 1) instead of 1.
    floor_level: added to the mel power before log10 (about -50 dB).
  """
  estimate = estimate.reshape(-1, estimate.shape[-1])
  reference = reference.reshape(-1, reference.shape[-1])
  loss, total = 0.0, 0.0
  for i in range(range_start, range_end):
    alpha = float(np.sqrt(2 ** i - 1)) if alphas else 1.0
    mel = functools.partial(mel_power, sample_rate=sample_rate, n_fft=2 ** i, n_mels=n_mels, f_min=f_min,
                            normalized=normalized)
    mel_est, mel_ref = mel(estimate), mel(reference)
    log_diff = jnp.log10(floor_level + mel_est) - jnp.log10(floor_level + mel_ref)
    loss += jnp.mean(jnp.abs(mel_est - mel_ref)) + alpha * jnp.mean(log_diff ** 2)
    total += alpha + 1.0
  return loss / total if normalized else loss


def commitment_loss(latent: jax.Array, codebooks: jax.Array, codes: jax.Array) -> jax.Array:
  """audiocraft's RVQ penalty: the mean over codebooks k of MSE(residual_k, quantized_k), where residual_k is the
  latent minus the (frozen) entries of codebooks 0 .. k-1; pulls the encoder towards its codes.

  Args:
    latent: [B, T, D] encoder output (the only input with a gradient).
    codebooks: [K, V, D].
    codes: [B, K, T] int32 chosen by the quantizer.
  """
  entries = jnp.stack([codebooks[k][codes[:, k]] for k in range(codebooks.shape[0])])  # [K, B, T, D]
  partial_sums = jax.lax.stop_gradient(jnp.cumsum(entries, axis=0))
  return jnp.mean((latent[None] - partial_sums) ** 2)
