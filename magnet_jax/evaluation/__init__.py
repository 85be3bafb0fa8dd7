"""Measuring audio: how well a codec reconstructs, how well generations follow their prompts, and the
paper's distribution metrics with their models.

  codec.py             a codec's reconstruction of held-out corpus clips
  prompt_following.py  scorers that rank candidates (best-of-N) and report prompt adherence
  metrics.py           FAD, KAD, FAD-inf, per-clip FAD, KL of label distributions, CLAP score
  bootstrap.py         seeded bootstrap intervals and paired comparisons of set metrics
  registry.py          evaluation models by name, a typing.Protocol per role (models in evaluation/models/)
  quality.py           generated audio against references, one model per role (embedder, classifier, text-audio)
  musicnn.py           musicnn: the offline default embedder and tagger (weights in the wheel)
  vggish.py            VGGish: the FAD embedder of Google's FAD, audiocraft and the paper
  ast_classifier.py    Audio Spectrogram Transformer: the AudioSet classifier of the paper's KL
  clap.py              CLAP: the text-audio embedder of audiocraft's clap_consistency
  musiccaps.py         the paper's MusicCaps evaluation offline
"""
