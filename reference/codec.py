"""Random-weight EnCodec references, saved in the layouts the released checkpoints use.

- transformers: `EncodecModel(EncodecConfig(...))` written with `save_pretrained` (config.json + model.safetensors).
- audiocraft: `builders.get_compression_model(xp_cfg)` written as `{'best_state', 'xp.cfg', 'version', 'exported'}`
  (audiocraft/utils/export.py), with `xp.cfg` keeping its `${...}` interpolations as `OmegaConf.to_yaml` does.

Both get non-default weight-norm gains and non-zero codebooks, so a converter that skips a key fails parity.
"""
import os

import torch

from reference.stubs import import_audiocraft


def _randomize_gains_(model: torch.nn.Module, gen: torch.Generator) -> None:
  """Weight-norm gains g -> g * U(0.5, 1.5) (their default init ||v|| would let a converter ignore them)."""
  with torch.no_grad():
    for name, tensor in model.named_parameters():
      if name.endswith(('weight_g', 'original0')):
        tensor.mul_(0.5 + torch.rand(tensor.shape, generator=gen))


def save_transformers_encodec(folder: str | os.PathLike, seed: int = 0, **config_kwargs):
  """Builds and saves a random transformers EncodecModel; returns it reloaded with `from_pretrained` (eval).

  Its codebooks (all zero after init) are drawn around the latents' mean and scale so that codes vary.
  """
  from transformers import EncodecConfig, EncodecModel

  torch.manual_seed(seed)
  gen = torch.Generator().manual_seed(seed)
  config = EncodecConfig(**config_kwargs)
  model = EncodecModel(config)
  _randomize_gains_(model, gen)
  with torch.no_grad():
    latent = model.encoder(torch.randn(2, config.audio_channels, 16 * config.hop_length, generator=gen))
    for k, layer in enumerate(model.quantizer.layers):
      center = latent.mean(dim=(0, 2)) if k == 0 else 0.0  # later codebooks quantize zero-mean residuals
      layer.codebook.embed.copy_(center + latent.std() * torch.randn(layer.codebook.embed.shape, generator=gen))
  model.save_pretrained(folder)
  return EncodecModel.from_pretrained(folder).eval()


def audiocraft_xp_cfg(sample_rate: int, channels: int = 1, causal: bool = False, trim_right_ratio: float = 1.0,
                      rvq: dict | None = None, **seanet) -> dict:
  """audiocraft's config/model/encodec/default.yaml (with its interpolations), overridden by the arguments."""
  return {
      'device': 'cpu', 'sample_rate': sample_rate, 'channels': channels, 'compression_model': 'encodec',
      'encodec': {'autoencoder': 'seanet', 'quantizer': 'rvq', 'sample_rate': '${sample_rate}',
                  'channels': '${channels}', 'causal': causal, 'renormalize': False},
      'seanet': {
          'dimension': 128, 'channels': '${channels}', 'causal': '${encodec.causal}', 'n_filters': 32,
          'n_residual_layers': 1, 'ratios': [8, 5, 4, 2], 'activation': 'ELU', 'activation_params': {'alpha': 1.0},
          'norm': 'weight_norm', 'norm_params': {}, 'kernel_size': 7, 'residual_kernel_size': 3,
          'last_kernel_size': 7, 'dilation_base': 2, 'pad_mode': 'constant', 'true_skip': True, 'compress': 2,
          'lstm': 2, 'disable_norm_outer_blocks': 0,
          'decoder': {'trim_right_ratio': trim_right_ratio, 'final_activation': None,
                      'final_activation_params': None},
          'encoder': {}, **seanet},
      'rvq': {'n_q': 8, 'q_dropout': False, 'bins': 1024, 'decay': 0.99, 'kmeans_init': True, 'kmeans_iters': 50,
              'threshold_ema_dead_code': 2, 'orthogonal_reg_weight': 0.0, 'orthogonal_reg_active_codes_only': False,
              **(rvq or {})},
  }


def save_audiocraft_encodec(path: str | os.PathLike, xp_cfg: dict, seed: int = 0, kmeans: bool = True):
  """Builds an audiocraft EncodecModel from `xp_cfg`, initialises its codebooks with one train-mode forward
  (k-means) unless `kmeans` is False, saves it as a released `compression_state_dict.bin` and returns it
  reloaded with audiocraft's `load_compression_model` (eval)."""
  import_audiocraft()
  import audiocraft
  from audiocraft.models import builders, loaders
  from omegaconf import OmegaConf

  cfg = OmegaConf.create(xp_cfg)
  torch.manual_seed(seed)
  model = builders.get_compression_model(cfg)
  _randomize_gains_(model, torch.Generator().manual_seed(seed))
  if kmeans:
    model.train()
    with torch.no_grad():
      model(torch.randn(4, cfg.channels, 16 * int(model.encoder.hop_length)))
  pkg = {'best_state': model.state_dict(), 'xp.cfg': OmegaConf.to_yaml(cfg), 'version': audiocraft.__version__,
         'exported': True}
  torch.save(pkg, path)
  return loaders.load_compression_model(path).eval()
