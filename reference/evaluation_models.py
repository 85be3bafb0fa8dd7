"""Evaluation models with random weights, saved as their originals save them, for the parity and end-to-end tests
and the evaluation-speed benchmark: a tiny transformers ASTForAudioClassification folder, a tiny ClapModel folder
(with a RoBERTa tokenizer trained here) and torchvggish's VGGish (its fixed size: 72M parameters)."""
import json
import os

import tokenizers
import torch
import transformers
from tokenizers import models, pre_tokenizers, trainers

AST_MAX_LENGTH = 100  # frames: 1 s segments
AST_LABELS = ('speech', 'music', 'dog', 'guitar', 'drum')
CLAP_MAX_S = 1  # 101 frames, stretched to the 128 of the image: the bicubic path
CLAP_CORPUS = ['a calm piano melody over soft strings', 'energetic electronic dance music with heavy bass',
               'a jazz trio with upright bass and brushed drums', 'lo-fi hip hop beat with vinyl crackle',
               'epic orchestral score with choir and timpani', 'heavy metal guitars and fast drums'] * 5


def ast_folder(folder) -> tuple:
  """(torch model, feature extractor) saved in `folder`: non-square patch grid (strides 12 x 8), AudioSet-like
  labels, a preprocessor with its own mean / std, random cls / distillation / position embeddings."""
  config = transformers.ASTConfig(
      hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, num_mel_bins=64,
      max_length=AST_MAX_LENGTH, frequency_stride=12, time_stride=8, initializer_range=0.1,
      id2label=dict(enumerate(AST_LABELS)), label2id={name: i for i, name in enumerate(AST_LABELS)})
  torch.manual_seed(0)
  model = transformers.ASTForAudioClassification(config).eval()
  with torch.no_grad():
    for p in (model.audio_spectrogram_transformer.embeddings.cls_token,
              model.audio_spectrogram_transformer.embeddings.distillation_token,
              model.audio_spectrogram_transformer.embeddings.position_embeddings):
      p.normal_(std=0.5)
  model.save_pretrained(folder)
  extractor = transformers.ASTFeatureExtractor(num_mel_bins=64, max_length=AST_MAX_LENGTH, mean=-3.0, std=4.0)
  extractor.save_pretrained(folder)
  return model, extractor


def _tokenizer_files(folder: str) -> None:
  """A byte-level BPE vocabulary trained on a few captions, saved as RoBERTa's vocab.json + merges.txt."""
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=['<s>', '<pad>', '</s>', '<unk>', '<mask>'],
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
  tok.train_from_iterator(CLAP_CORPUS, trainer)
  tok.model.save(folder)
  with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
    json.dump({'tokenizer_class': 'RobertaTokenizer', 'model_max_length': 512}, f)


def _randomize(model) -> None:
  """Random weights everywhere (transformers initialises biases, norms and position biases as constants) and batch
  norm statistics of the scale of a dB spectrogram."""
  gen = torch.Generator().manual_seed(0)
  normal = lambda shape, std: torch.randn(shape, generator=gen) * std
  state = model.state_dict()
  for key, value in state.items():
    if not value.is_floating_point():
      continue
    if key.endswith('running_mean'):
      value.copy_(-40.0 + normal(value.shape, 5.0))
    elif key.endswith('running_var'):
      value.copy_(300.0 * (1.0 + torch.rand(value.shape, generator=gen)))
    elif 'norm' in key.lower() and key.endswith('weight'):
      value.copy_(1.0 + normal(value.shape, 0.1))
    elif value.ndim == 1 or 'relative_position_bias_table' in key:
      value.copy_(normal(value.shape, 0.2))
    elif value.ndim >= 2:
      value.copy_(normal(value.shape, 1.0 / value[0].numel() ** 0.5))
  model.load_state_dict(state)


def clap_folder(folder) -> tuple:
  """(torch ClapModel, ClapFeatureExtractor, RobertaTokenizer) of a tiny random CLAP saved in `folder`."""
  folder = str(folder)
  os.makedirs(folder, exist_ok=True)
  _tokenizer_files(folder)
  text = dict(vocab_size=400, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
              max_position_embeddings=80, pad_token_id=1, bos_token_id=0, eos_token_id=2)
  # A 32 x 32 image of 8 mel bands x 4 time slices: 8 x 8 patches in windows of 4, shifted in stage 0's second
  # block; stage 1's 4 x 4 grid is one unshifted window.
  audio = dict(num_mel_bins=8, spec_size=32, window_size=4, patch_size=4, patch_stride=[4, 4],
               patch_embeds_hidden_size=16, depths=[2, 1], num_attention_heads=[2, 4], hidden_size=32,
               enable_fusion=False)
  config = transformers.ClapConfig(text_config=text, audio_config=audio, projection_dim=24)
  torch.manual_seed(0)
  model = transformers.ClapModel(config).eval()
  _randomize(model)
  model.save_pretrained(folder)
  extractor = transformers.ClapFeatureExtractor(feature_size=8, max_length_s=CLAP_MAX_S, frequency_min=50,
                                                truncation='rand_trunc', padding='repeatpad')
  extractor.save_pretrained(folder)
  tokenizer = transformers.RobertaTokenizer.from_pretrained(folder)
  return model, extractor, tokenizer


def vggish_model():
  """torchvggish's VGG (reference/vggish.py) with weights larger than torch's init, so that the ReLUs do not zero
  most features."""
  from reference.vggish import VGG
  torch.manual_seed(0)
  model = VGG().eval()
  for m in model.modules():
    if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
      torch.nn.init.normal_(m.weight, std=(2.0 / m.weight[0].numel()) ** 0.5)
      torch.nn.init.normal_(m.bias, std=0.1)
  return model


def vggish_checkpoint(path) -> None:
  """A `vggish-10086976.pth`-like torch.save file of `vggish_model`'s state dict."""
  torch.save(vggish_model().state_dict(), path)
