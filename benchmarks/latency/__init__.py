"""Latency and throughput of MAGNeT decoding, magnet-jax against audiocraft (PyTorch) side by side, and of the
sharded training step: `python -m benchmarks.latency --help`, benchmarks/README.md.

  spec.py      model sizes, the case grid, analytic FLOPs, cost estimates (what gets skipped)
  systems.py   audiocraft eager / torch.compile, magnet-jax (one program / Python loop), ar-jax
  measure.py   worker processes, timing, peak memory, the machine
  training.py  the sharded train step: steps/s, MFU
  runner.py    the grid, interleaved repeats, skips
  report.py    rows, ratios, Markdown table, atomic JSON
"""
