"""Named sampling presets (`--preset`): starting points between speed and quality, as `DecodingConfig` overrides.

Latency is proportional to the forward passes, sum(decoding_steps) (times two with a rescorer: one MAGNeT and
one rescorer forward per step). 'stride1' re-masks overlapping spans; the audiocraft authors recommend it over the
released default 'nonoverlap' (audiocraft issues #395 / #440, and their demo notebook's default). Measured
latencies: docs/sampling.md.

The steps are the knees of the measured latency-quality frontier of the embedded default (musicnn FAD and tag-KL
against held-out corpus clips, 16 clips per setting; benchmarks/results/quality_frontier.md, `python -m
benchmarks.quality_frontier`): tag-KL 0.94 / 0.85 / 0.83 / 0.78 at 5 / 10 / 25 / 50 forwards (2/1/1/1, 4/2/2/2,
10/5/5/5, 20/10/10/10), FAD flat within noise (52-55). 4/2/2/2 is the cheapest setting within noise of 10/5/5/5;
below it quality drops; 20/10/10/10 was the best measured. Temperature and CFG stay at the released models' values.
"""
PRESETS: dict[str, dict] = {
    # 10 forwards: the frontier's cheapest setting within noise of 10/5/5/5 (2/1/1/1 loses 0.09 tag-KL).
    'fast': {'decoding_steps': (4, 2, 2, 2), 'span_arrangement': 'nonoverlap'},
    # 25 forwards: the embedded default's steps with the recommended stride-1 spans (tag-KL 0.81 vs 0.83).
    'balanced': {'decoding_steps': (10, 5, 5, 5), 'span_arrangement': 'stride1'},
    # 50 forwards (audiocraft's steps, the best measured: tag-KL 0.78, FAD 52.0); rescoring by a MusicGen-style LM
    # when one is loaded.
    'quality': {'decoding_steps': (20, 10, 10, 10), 'span_arrangement': 'stride1', 'rescorer_weight': 0.5},
}


def overrides(name: str | None, n_q: int, has_rescorer: bool) -> dict:
  """The preset's DecodingConfig overrides for an LM with n_q levels (None: no preset, the checkpoint's defaults).

  Levels past the fourth repeat the last entry's steps; rescoring is dropped when no rescorer is loaded.

  Raises:
    ValueError: an unknown preset name.
  """
  if name is None:
    return {}
  if name not in PRESETS:
    raise ValueError(f'unknown preset {name!r}; choose one of {sorted(PRESETS)}')
  values = {'rescorer_weight': 0.0, **PRESETS[name]}
  steps = values['decoding_steps']
  values['decoding_steps'] = tuple(steps[min(k, len(steps) - 1)] for k in range(n_q))
  if not has_rescorer:
    values['rescorer_weight'] = 0.0
  return values
