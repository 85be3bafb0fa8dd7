"""Text -> audio as a library: `MagnetPipeline` (text encoder -> masked decoding -> codec, one program per window),
`pretrained.load` for released and exported folders, window planning for long form and infilling, prompt requests
and the persistent compilation cache.

  pipeline.py         MagnetPipeline: generate, continue, infill, outpaint, loop, stream (host-side planning)
  window_program.py   the compiled window program (a decoding strategy, then the codec), keys, step listeners
  request.py          one generation request (modes, their checks, their dispatch) for every front end
  best_of.py          best-of-N candidates and the scorer registry
  sample_files.py     prompts -> audio files with sidecars (`magnet-jax` as a library function)
  pretrained.py       load / save_pipeline / load_rescorer
  windows.py          which windows decode which frames
  prompts.py          prompts (text, seed, duration), prompt files and output names
  live.py             LiveStream: endless long form that follows controls changed while it plays
  prompt_schedule.py  prompt schedules: text changing over a piece
  records.py          the JSON sidecar written beside every generated file
  lora.py             LoRA adapters' layout, file format and merging
  compile_cache.py    JAX's persistent compilation cache in the user cache folder
  random_pipeline.py  a pipeline of random weights (tests, benchmarks)
"""
