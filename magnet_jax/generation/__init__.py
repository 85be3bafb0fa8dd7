"""Text -> audio as a library: `MagnetPipeline` (text encoder -> masked decoding -> codec, one program per window),
`pretrained.load` for released and exported folders, window planning for long form and infilling, prompt requests
and the persistent compilation cache.

  pipeline.py         MagnetPipeline: generate, continue, infill, outpaint, loop, stream
  live.py             LiveStream: endless long form that follows controls changed while it plays
  pretrained.py       load / save_pipeline / load_rescorer
  windows.py          which windows decode which frames
  prompt_schedule.py  prompt schedules: text changing over a piece
  requests.py         prompts (text, seed, duration) and prompt files
  records.py          the JSON sidecar written beside every generated file
  lora.py             LoRA adapters' layout, file format and merging
  compile_cache.py    JAX's persistent compilation cache in the user cache folder
  random_pipeline.py  a pipeline of random weights (tests, benchmarks)
"""
