"""Named sampling presets (`--preset`): starting points between speed and quality, as `DecodingConfig` overrides.

Latency is proportional to the forward passes, sum(decoding_steps) (times two with a rescorer: one MAGNeT and
one rescorer forward per step). 'stride1' re-masks overlapping spans; the audiocraft authors recommend it over the
released default 'nonoverlap' (audiocraft issues #395 / #440, and their demo notebook's default). Measured
latencies: docs/sampling.md.
"""
PRESETS: dict[str, dict] = {
    # 25 forwards; the released span arrangement, which is the cheaper one per step.
    'fast': {'decoding_steps': (10, 5, 5, 5), 'span_arrangement': 'nonoverlap', 'temp': 3.0,
             'max_cfg_coef': 10.0, 'min_cfg_coef': 1.0, 'top_p': 0.9, 'rescorer_weight': 0.0},
    # 50 forwards: audiocraft's defaults with the recommended stride-1 spans.
    'balanced': {'decoding_steps': (20, 10, 10, 10), 'span_arrangement': 'stride1', 'temp': 3.0,
                 'max_cfg_coef': 10.0, 'min_cfg_coef': 1.0, 'top_p': 0.9, 'rescorer_weight': 0.0},
    # 100 forwards, twice the steps on every level; rescoring by a MusicGen-style LM when one is loaded.
    'quality': {'decoding_steps': (40, 20, 20, 20), 'span_arrangement': 'stride1', 'temp': 3.0,
                'max_cfg_coef': 10.0, 'min_cfg_coef': 1.0, 'top_p': 0.9, 'rescorer_weight': 0.5},
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
  values = dict(PRESETS[name])
  steps = values['decoding_steps']
  values['decoding_steps'] = tuple(steps[min(k, len(steps) - 1)] for k in range(n_q))
  if not has_rescorer:
    values['rescorer_weight'] = 0.0
  return values
