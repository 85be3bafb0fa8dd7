"""The commands: each parses its flags (absl) and calls one library function.

  runner.py          shared plumbing: one-line errors for bad flags and bad input
  sample.py          `magnet-jax` / sample.py: text, continuation, infill, outpaint, loops, long form
  prepare.py         audio folder -> TFDS codec-token dataset
  corpus.py          the procedural corpus -> WAVs + manifests
  codec_train.py     train a codec; codec_evaluate.py scores one
  embedded.py        rebuild the embedded default (corpus -> codec tokens -> LM -> exported pipeline)
  prompt_following.py  prompt-following statistics of a pipeline
"""
