"""Randomly initialised audiocraft LMs (MAGNeT, and MusicGen for the rescorer) built from a MagnetConfig.

The text conditioner is a stand-in for audiocraft's T5Conditioner whose only parameters are `output_proj`, so the
state dict has exactly the released keys; it maps each description to fixed text-encoder states given by the
caller (real T5 parity is tested separately against transformers).
"""
from collections.abc import Mapping

import numpy as np

from magnet_jax.models.config import MagnetConfig
from reference.stubs import import_audiocraft

import_audiocraft()
import torch  # noqa: E402
from audiocraft.models.lm import LMModel  # noqa: E402
from audiocraft.models.lm_magnet import MagnetLMModel  # noqa: E402
from audiocraft.modules import codebooks_patterns, conditioners  # noqa: E402


class StatesConditioner(conditioners.TextConditioner):
  """T5Conditioner stand-in: description -> given states [S_i, Dt], padded to the batch's longest like T5's
  tokenizer (`padding=True`); None/"" count as one token with a zero mask, as in T5Conditioner.tokenize."""

  def __init__(self, text_dim: int, output_dim: int, states: Mapping[str, np.ndarray]):
    super().__init__(text_dim, output_dim)
    self.states = {k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in states.items()}

  def tokenize(self, x):
    entries = [xi or '' for xi in x]
    rows = [self.states[e] if e else torch.zeros(1, self.dim) for e in entries]
    length = max(r.shape[0] for r in rows)
    padded = torch.zeros(len(rows), length, self.dim)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, (entry, row) in enumerate(zip(entries, rows, strict=True)):
      padded[i, :row.shape[0]] = row
      mask[i, :row.shape[0]] = int(bool(entry))
    return {'states': padded, 'attention_mask': mask}

  def forward(self, inputs):
    mask = inputs['attention_mask'].to(self.output_proj.weight.device)  # tokenize builds it on the CPU
    embeds = self.output_proj(inputs['states'].to(self.output_proj.weight)) * mask.unsqueeze(-1)
    return embeds, mask


def _randomise_norms(model: torch.nn.Module, generator: torch.Generator) -> None:
  """LayerNorm weights/biases default to 1/0: randomise them so a loader that skipped them would fail parity."""
  for module in model.modules():
    if isinstance(module, torch.nn.LayerNorm):
      module.weight.data = 1 + 0.1 * torch.randn(module.weight.shape, generator=generator)
      module.bias.data = 0.1 * torch.randn(module.bias.shape, generator=generator)


def _build(model_class, config: MagnetConfig, states: Mapping[str, np.ndarray], seed: int, condition_name: str,
           pattern_provider, **extra):
  """An audiocraft LM at `config`'s sizes with the released settings, random weights, eval mode."""
  torch.manual_seed(seed)
  generator = torch.Generator().manual_seed(seed)
  provider = conditioners.ConditioningProvider(
      {condition_name: StatesConditioner(config.text_dim, config.dim, states)})
  fuser = conditioners.ConditionFuser({'cross': [condition_name], 'prepend': [], 'sum': [], 'input_interpolate': []})
  model = model_class(
      pattern_provider=pattern_provider, condition_provider=provider, fuser=fuser, n_q=config.n_q, card=config.card,
      dim=config.dim, num_heads=config.num_heads, num_layers=config.num_layers, hidden_scale=config.hidden_scale,
      norm='layer_norm', norm_first=True, bias_proj=False, weight_init='gaussian', depthwise_init='current',
      zero_bias_init=True, cfg_dropout=0.0, cfg_coef=3.0, two_step_cfg=False, causal=config.causal,
      past_context=None, custom=True, memory_efficient=True, attention_as_float32=False, layer_scale=None,
      positional_embedding='sin', xpos=False, checkpointing='none', cross_attention=True, qk_layer_norm=False,
      qk_layer_norm_cross=False, dropout=0.0, activation='gelu', bias_ff=False, bias_attn=False, device='cpu',
      dtype=torch.float32, **extra)
  _randomise_norms(model, generator)
  with torch.no_grad():
    model.condition_provider.conditioners[condition_name].output_proj.bias.normal_(0, 0.1, generator=generator)
  return model.eval()


def build_magnet_lm(config: MagnetConfig, states: Mapping[str, np.ndarray], seed: int = 0,
                    condition_name: str = 'description') -> MagnetLMModel:
  """audiocraft MagnetLMModel with the released MAGNeT settings at `config`'s sizes, random weights, eval mode."""
  return _build(MagnetLMModel, config, states, seed, condition_name,
                codebooks_patterns.ParallelPatternProvider(config.n_q, empty_initial=-1),
                subcodes_context=config.subcodes_context, compression_model_framerate=config.frame_rate,
                segment_duration=int(config.segment_duration), span_len=config.span_len)


def build_musicgen_lm(config: MagnetConfig, states: Mapping[str, np.ndarray], seed: int = 0,
                      condition_name: str = 'description') -> LMModel:
  """audiocraft's MusicGen LMModel (causal, delay pattern with delays 0 .. K-1; the rescorer's reference) at a
  causal `config`'s sizes, random weights, eval mode."""
  if not config.causal:
    raise ValueError('MusicGen is autoregressive: pass a config with causal=True')
  return _build(LMModel, config, states, seed, condition_name,
                codebooks_patterns.DelayedPatternProvider(config.n_q, delays=list(range(config.n_q))))


def condition_tensors(model: MagnetLMModel, descriptions: list[str | None], condition_name: str = 'description'):
  """audiocraft's condition tensors for `descriptions` (pass cond + null descriptions together for CFG)."""
  attributes = [conditioners.ConditioningAttributes(text={condition_name: d}) for d in descriptions]
  return model.condition_provider(model.condition_provider.tokenize(attributes))


def xp_cfg_yaml(config: MagnetConfig, t5_name: str = 't5-base', condition_name: str = 'description',
                sample_rate: int = 32000) -> str:
  """The parts of a released checkpoint's `xp.cfg` that loaders read, in audiocraft's key layout: MAGNeT's
  (parallel pattern), or MusicGen's (causal, delay pattern) for a causal config."""
  import yaml
  lm_model = 'transformer_lm' if config.causal else 'transformer_lm_magnet'
  if config.causal or config.codebooks_pattern == 'delay':  # MusicGen / Hybrid-MAGNeT
    pattern = {'modeling': 'delay', 'delay': {'delays': list(range(config.n_q)), 'flatten_first': 0,
                                              'empty_initial': 0}}
  else:
    pattern = {'modeling': 'parallel', 'parallel': {'empty_initial': -1}}
  return yaml.safe_dump({
      'lm_model': lm_model,
      'sample_rate': sample_rate,
      'compression_model_checkpoint': '//pretrained/facebook/encodec_32khz',
      'dataset': {'segment_duration': config.segment_duration},
      'masking': {'span_len': config.span_len},
      'codebooks_pattern': pattern,
      'conditioners': {condition_name: {'model': 't5', 't5': {'name': t5_name, 'finetune': False}}},
      'transformer_lm': {
          'n_q': config.n_q, 'card': config.card, 'dim': config.dim, 'num_heads': config.num_heads,
          'num_layers': config.num_layers, 'hidden_scale': config.hidden_scale, 'causal': config.causal,
          'subcodes_context': config.subcodes_context, 'span_len': -1, 'norm': 'layer_norm', 'norm_first': True,
          'bias_proj': False, 'bias_ff': False, 'bias_attn': False, 'positional_embedding': 'sin',
          'activation': 'gelu', 'custom': True, 'memory_efficient': True, 'cross_attention': True},
  })


def save_released(model: torch.nn.Module, config: MagnetConfig, path: str, **xp_cfg_kwargs) -> None:
  """Saves `model` as a released `state_dict.bin`: {'best_state', 'xp.cfg', 'version'}."""
  torch.save({'best_state': model.state_dict(), 'xp.cfg': xp_cfg_yaml(config, **xp_cfg_kwargs),
              'version': '1.3.0'}, path)


def released_pair(config: MagnetConfig, descriptions: list[str | None], path: str, seed: int = 0):
  """A random audiocraft LM (MusicGen's LMModel for a causal config, else MagnetLMModel) with random text states
  for each description, saved as a released `state_dict.bin` at `path` and loaded back by our converter.

  Returns:
    (torch model, our config, our params, cond [B, S, Dt], cond_mask [B, S] bool) where cond/cond_mask are the
    padded text states of `descriptions` exactly as the torch model's conditioner builds them.
  """
  from magnet_jax.io.audiocraft import load_audiocraft_lm
  rng = np.random.default_rng(seed)
  texts = sorted({d for d in descriptions if d})
  states = {d: rng.normal(size=(3 + i % 4, config.text_dim)) for i, d in enumerate(texts)}
  model = (build_musicgen_lm if config.causal else build_magnet_lm)(config, states, seed=seed)
  save_released(model, config, path)
  ours, params = load_audiocraft_lm(path)
  tokenized = model.condition_provider.tokenize(
      [conditioners.ConditioningAttributes(text={'description': d}) for d in descriptions])['description']
  return model, ours, params, tokenized['states'].numpy(), tokenized['attention_mask'].numpy().astype(bool)
