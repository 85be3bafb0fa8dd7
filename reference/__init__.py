"""PyTorch references (audiocraft, transformers) used by parity tests, converters' tests and the benchmark.

Importing anything under this package imports torch. Training and sampling never do.
"""
