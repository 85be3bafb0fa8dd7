"""Defaults shared by every config; the model section defaults to magnet-small-10secs.

Not a launchable config by itself; the variants import it and override.
"""
import dataclasses

import ml_collections

from magnet_jax.models.config import MagnetConfig


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # LM hyperparameters: every field of magnet_jax.models.config.MagnetConfig (audiocraft's transformer_lm names).
  config.model = ml_collections.ConfigDict(dataclasses.asdict(MagnetConfig()))

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 192          # global batch (split over processes and the mesh's data axis).
  config.train.num_steps = 500_000       # optimizer steps.
  config.train.log_every = 100           # steps between log lines / metrics.jsonl rows.
  config.train.checkpoint_every = 5_000  # steps between (asynchronous) checkpoints.
  config.train.max_checkpoints = 3       # checkpoints kept.
  config.train.seed = 0                  # init, masking and dropout randomness.
  config.train.cfg_dropout = 0.3         # classifier-free guidance: P(null condition) per batch (0.1 for audio).
  config.train.trainable = ()            # regexes over param paths that train; () = all. The rest are frozen (no
                                         # optimizer state), e.g. ('cross_attention', 'cond_proj').

  # Where the params start (see magnet_jax/training/init.py); the run itself starts at step 0.
  config.init = ml_collections.ConfigDict()
  config.init.source = ''                # '' = random; a released audiocraft folder, an exported folder or a workdir.
  config.init.step = -1                  # workdir source: which checkpoint; -1 = the latest.
  config.init.reinit = ()                # regexes over param paths re-initialised randomly, e.g. ('cond_proj',).

  # LoRA adapters on the frozen model (see magnet_jax/generation/lora.py); the adapter file is workdir/lora.safetensors.
  config.lora = ml_collections.ConfigDict()
  config.lora.rank = 0                   # adapter rank r; 0 = off (train the params themselves).
  config.lora.alpha = 16.0               # adapter scale alpha / r.
  config.lora.dropout = 0.0              # P(drop an adapter input feature) per step.
  config.lora.targets = ('self_attn', 'cross_attn', 'mlp')  # groups (self_attn | cross_attn | mlp) or kernel regexes.

  # Validation on a fixed set with fixed masks (see magnet_jax/training/validation.py).
  config.eval = ml_collections.ConfigDict()
  config.eval.every = 0                  # steps between validations (and one before the first step); 0 = off.
  config.eval.split = 'valid'            # tfds split held out by prepare (valid manifests / --valid-fraction).
  config.eval.num_examples = 32          # the first N records of the split.
  config.eval.batch_size = 16            # examples per forward pass (divisible by the mesh data axis).
  config.eval.mask_rates = (0.25, 0.5, 0.75)  # fixed masking rates, each evaluated on every level.
  config.eval.seed = 0                   # the fixed masks' seed.

  # Samples during training, written to workdir/samples/step_N (see magnet_jax/training/samples.py).
  config.samples = ml_collections.ConfigDict()
  config.samples.every = 0               # steps between samples (and one before the first step); 0 = off.
  config.samples.prompts = ()            # captions to generate, one clip each.
  config.samples.seed = 0                # prompt i uses seed + i.
  config.samples.codec = ''              # magnet-jax codec folder to decode with; '' = write the codes (.npy).
  config.samples.text_encoder = ''       # minilm | t5:FOLDER | bert:FOLDER; '' = the dataset's.
  config.samples.duration = 0.0          # seconds; 0 = model.segment_duration.
  config.samples.decoding_steps = (10, 5, 5, 5)  # MaskedDecoder steps per level.

  config.optim = ml_collections.ConfigDict()
  config.optim.lr = 5e-4                 # peak learning rate (AdamW).
  config.optim.b1 = 0.9
  config.optim.b2 = 0.95
  config.optim.eps = 1e-8
  config.optim.weight_decay = 0.1        # decoupled, matrices only.
  config.optim.schedule = 'cosine'       # cosine | inverse_sqrt | constant, after linear warmup.
  config.optim.warmup_steps = 4_000
  config.optim.lr_min_ratio = 0.0        # cosine floor as a fraction of lr.
  config.optim.max_norm = 1.0            # global-norm gradient clipping; 0 = off.
  config.optim.ema_decay = 0.0           # EMA of params kept in the train state; 0 = off.

  config.data = ml_collections.ConfigDict()
  config.data.source = 'synthetic'       # synthetic (no audio needed) | tfds (codec tokens built from audio).
  config.data.dir = ''                   # tfds: `python -m magnet_jax.apps.prepare --out` folder (or its version dir).
  config.data.length = 0                 # frames per example; 0 = model.segment_duration * model.frame_rate.
  config.data.num_examples = 64          # synthetic: size of the fixed example set.
  config.data.text_len = 8               # synthetic: text tokens per example.
  config.data.split = 'train'            # tfds: split to train on.
  config.data.shuffle_seed = 0           # tfds: seed of the global shuffle and of caption augmentation.
  config.data.worker_count = 0           # tfds: grain worker processes for the per-record transforms (0 = none;
                                         # reads are threaded either way); resuming on another process count needs 0.
  config.data.worker_buffer_size = 2     # tfds: batches each worker prepares ahead.
  config.data.caption_len = 64           # tfds: text tokens per example (caption states padded or cut to it).
  config.data.text_encoder = ''          # tfds: minilm | t5:FOLDER | bert:FOLDER; '' = the one the dataset names.
  config.data.sample_rate = 0            # tfds: codec sample rate the dataset must have (Hz); 0 = any.
  # tfds, captions stored as text: audiocraft's caption augmentation (MAGNeT music: 0.25, 0.5, 0.5, 0.3).
  config.data.merge_text_p = 0.0         # P(merge "field: value" metadata pairs into the caption).
  config.data.drop_desc_p = 0.0          # P(drop the description when merging).
  config.data.drop_other_p = 0.0         # P(keep each metadata field when merging) (audiocraft's meaning).
  config.data.word_dropout = 0.0         # P(drop each caption word) (T5Conditioner word_dropout).
  config.data.merge_fields = ('key', 'bpm', 'genre', 'moods', 'instrument', 'keywords')  # fields that may merge.

  config.sharding = ml_collections.ConfigDict()
  config.sharding.mesh = ml_collections.ConfigDict({'data': -1, 'model': 1})  # -1 = the remaining devices.
  config.sharding.preset = 'data_parallel'  # data_parallel | fsdp | tensor_parallel: see docs/sharding.md.
  config.sharding.rules = ()             # extra (logical axis, mesh axis) pairs overriding the preset.
  return config
