"""The commands: each parses its flags (absl, spelled with dashes) and calls one library function.

  runner.py            shared plumbing: one-line errors, --help, old underscore flag spellings
  main.py              `magnet-jax`: sampling, or `magnet-jax serve`
  sample.py            `magnet-jax` / sample.py: text, continuation, infill, outpaint, loops, long form
  live.py              `magnet-jax live`: a WAV stream that plays while it is generated
  serve.py             `magnet-jax serve`: the HTTP server
  merge_lora.py        a LoRA adapter merged into an exported pipeline
  prepare.py           audio folder -> TFDS codec-token dataset
  corpus.py            the procedural corpus -> WAVs + manifests
  codec_train.py       train a codec
  codec_evaluate.py    score a codec's reconstruction
  default_model.py     rebuild the shipped default (corpus -> codec tokens -> LM -> exported pipeline)
  evaluate.py          FAD / KL / CLAP of generated audio against references
  musiccaps.py         the paper's MusicCaps table
  prompt_following.py  prompt-following statistics of a pipeline
"""
