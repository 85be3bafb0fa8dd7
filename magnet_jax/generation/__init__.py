"""Sampling for people: the `magnet-jax` / `sample.py` command line, prompt files, output files, presets, window
planning for long form and infilling, loudness normalisation and the persistent compilation cache."""
