"""Named sampling presets (`--preset`, `preset=`): how many decoding steps per level and which span arrangement.

A preset sets only what it is about (`decoding_steps`, `span_arrangement`, and rescoring for 'quality' when a
rescorer is loaded); temperature, top-p and CFG stay the checkpoint's tuned values. Latency is proportional to the
forward passes, sum(decoding_steps) (times two with a rescorer: one MAGNeT and one rescorer forward per step).

The steps are the knees of the measured latency-quality frontier of the embedded default (musicnn FAD and tag-KL
against held-out corpus clips, 16 clips per setting; benchmarks/results/quality_frontier.md, `python -m
benchmarks.quality_frontier`): tag-KL 0.94 / 0.85 / 0.83 / 0.78 at 5 / 10 / 25 / 50 forwards (2/1/1/1, 4/2/2/2,
10/5/5/5, 20/10/10/10), FAD flat within noise (52-55). The span arrangement is 'nonoverlap' for all three:
on the embedded default (`python -m benchmarks.presets`, benchmarks/results/presets.json, seeds 0-3) 'stride1',
which the audiocraft authors recommend for their released models (audiocraft issues #395 / #440), halves the
drum groove's onset rate (2.65/s at 10/5/5/5 against 3.97/s; 2.15 against 4.22 at 20/10/10/10) and so the
busy-calm contrast that the checkpoint's prompt-following check measures. Forcing audiocraft's temperature 3 and
CFG 10 -> 1, as the presets once did, drops it to 1.8-2.0/s.
"""
PRESETS: dict[str, dict] = {
    # 10 forwards: the frontier's cheapest setting within noise of 10/5/5/5 (2/1/1/1 loses 0.09 tag-KL).
    'fast': {'decoding_steps': (4, 2, 2, 2), 'span_arrangement': 'nonoverlap'},
    # 25 forwards: the embedded default's own steps.
    'balanced': {'decoding_steps': (10, 5, 5, 5), 'span_arrangement': 'nonoverlap'},
    # 50 forwards (audiocraft's steps, the best measured: tag-KL 0.78, FAD 52.0); rescoring by a MusicGen-style LM
    # when one is loaded.
    'quality': {'decoding_steps': (20, 10, 10, 10), 'span_arrangement': 'nonoverlap', 'rescorer_weight': 0.5},
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
