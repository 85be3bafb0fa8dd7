"""The embedded codec: a small 16 kHz EnCodec trained on the procedural corpus (seed 0, 2000 clips' train split).

Rebuild the shipped files (magnet_jax/assets/default/codec/codec.{json,safetensors}, the codec of the embedded
default pipeline), about an hour on 2 CPU cores:

  python -m magnet_jax.apps.codec_train --config=configs/codec_default.py --workdir=/tmp/codec-default \
      --export-dir=magnet_jax/assets/default/codec

Score them on the held-out test split:

  python -m magnet_jax.apps.codec_evaluate --codec=magnet_jax/assets/default/codec
"""
import dataclasses

import ml_collections

from magnet_jax.codec.config import CodecConfig


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # Architecture: every field of magnet_jax.codec.CodecConfig (audiocraft's seanet / rvq keys). audio-MAGNeT's
  # 16 kHz layout (hop 320 -> 50 Hz frames, constant padding, 2 LSTM layers) at 1/4 of its width.
  config.codec = ml_collections.ConfigDict(dataclasses.asdict(CodecConfig(
      sample_rate=16000, ratios=(8, 5, 4, 2), n_filters=8, dimension=64, n_q=4, bins=256, lstm=2,
      pad_mode='constant')))

  config.rvq = ml_collections.ConfigDict()
  config.rvq.decay = 0.99                  # EMA decay of the codebook statistics.
  config.rvq.epsilon = 1e-5                # Laplace smoothing of the EMA counts.
  config.rvq.kmeans_iters = 50             # k-means iterations of the initialisation.
  config.rvq.kmeans_batch_size = 64        # crops whose latents the k-means fits (64 x 50 frames for 256 bins).
  config.rvq.threshold_ema_dead_code = 0.5  # entries used less often per batch are replaced (400 frames / batch).

  config.losses = ml_collections.ConfigDict()
  config.losses.l1 = 0.1                   # waveform L1 (audiocraft compression default).
  config.losses.msspec = 2.0               # multi-scale mel (audiocraft compression default).
  config.losses.commitment = 1.0           # RVQ commitment penalty (audiocraft rvq commitment_weight).

  config.msspec = ml_collections.ConfigDict()  # audiocraft's msspec loss settings.
  config.msspec.range_start = 6            # smallest n_fft 2 ** 6.
  config.msspec.range_end = 11             # largest n_fft 2 ** 10 (exclusive end).
  config.msspec.n_mels = 64
  config.msspec.f_min = 64.0               # Hz.
  config.msspec.normalized = True          # window-normalised STFTs; the scales' sum divided by its weights.
  config.msspec.alphas = False             # equal weights for every scale's log-mel MSE.
  config.msspec.floor_level = 1e-5         # added to the mel power before log10.

  config.optim = ml_collections.ConfigDict()  # magnet_jax.training.optim.make_optimizer.
  config.optim.lr = 1e-3
  config.optim.b1 = 0.5                    # audiocraft's compression Adam betas.
  config.optim.b2 = 0.9
  config.optim.eps = 1e-8
  config.optim.weight_decay = 0.0          # plain Adam.
  config.optim.schedule = 'cosine'         # cosine | inverse_sqrt | constant, after linear warmup.
  config.optim.warmup_steps = 100
  config.optim.lr_min_ratio = 0.05         # cosine floor as a fraction of lr.
  config.optim.max_norm = 0.0              # global-norm gradient clipping; 0 = off.

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 8              # crops per step.
  config.train.segment_duration = 1.0      # seconds per crop (50 frames).
  config.train.num_steps = 3500
  config.train.log_every = 50              # steps between log lines / metrics.jsonl rows.
  config.train.eval_every = 500            # steps between validation (valid split) and codec/ folder writes.
  config.train.checkpoint_every = 500      # steps between orbax checkpoints.
  config.train.max_checkpoints = 2
  config.train.seed = 0                    # init, k-means, crops and dead-code replacement randomness.

  config.data = ml_collections.ConfigDict()
  config.data.corpus_dir = ''              # a corpus folder (python -m magnet_jax.apps.corpus); '' = render in memory.
  config.data.seed = 0                     # corpus seed (rendered in memory).
  config.data.num_clips = 2000             # corpus size (rendered in memory); the train split is about 90%.
  config.data.duration = 5.0               # seconds per clip (rendered in memory).
  config.data.eval_clips = 16              # valid-split clips scored at every evaluation.
  return config
