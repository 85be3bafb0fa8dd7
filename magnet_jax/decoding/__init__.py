"""MAGNeT's iterative decoding, compiled into one XLA program.

  config.py         DecodingConfig: every decoding setting with its help and bounds; its checks and overrides parser
  mask_schedule.py  the cosine mask schedule (shared with training) and the per-step tables
  decoder.py        MaskedDecoder: DecodeState, the loop body and the fori_loop; the LM enters as a LogitsFn; span
                    modes as a table (SPAN_MODES)
  spans.py          which spans are re-masked (static shapes)
  sampling.py       top-p / top-k / multinomial / argmax
  guidance.py       classifier-free guidance over [conditions; null conditions or a negative prompt's]
  pattern.py        MusicGen's delay codebook pattern
  rescoring.py      an autoregressive LM's probabilities mixed into the span scores (a RescoreFn)
  hybrid.py         Hybrid-MAGNeT: KV-cached autoregressive prefix, then masked decoding
  generate.py       the core composed with rescoring: `masked_decode` (traceable) and `generate` (jitted)
  strategies.py     the Decoder interface (capabilities, check, decode) and its registry: masked, rescored, hybrid
  presets.py        named decoding settings (fast / balanced / quality)
"""
from magnet_jax.decoding.config import DecodingConfig, check_config, output_length
from magnet_jax.decoding.decoder import (
    DONT_REMASK_SCORE,
    DecodeState,
    LogitsFn,
    MaskedDecoder,
    RescoreFn,
    StepHook,
    check_finite,
    check_inputs,
    initial_context,
    magnet_logits_fn,
)
from magnet_jax.decoding.generate import generate, masked_decode
from magnet_jax.decoding.mask_schedule import cosine_schedule, mask_schedule, num_masked, step_tables, torch_linspace01

__all__ = ['DONT_REMASK_SCORE', 'DecodeState', 'DecodingConfig', 'LogitsFn', 'MaskedDecoder', 'RescoreFn',
           'StepHook', 'check_config', 'check_finite', 'check_inputs', 'cosine_schedule', 'generate', 'initial_context',
           'magnet_logits_fn', 'mask_schedule', 'masked_decode', 'num_masked', 'output_length', 'step_tables',
           'torch_linspace01']
