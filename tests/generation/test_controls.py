"""Control over a generation: prompt schedules, negative prompts, step progress and cancel, tempo-locked loops.

Pipeline: random weights, T = 30-frame window (`tiny_pipeline_folder`), hop 32 at 1.6 kHz; decoding steps (4, 2, 2,
2). Every generation here is batch 1 with windows of 30 frames: one compiled program (and its progress variant).
"""
import numpy as np
import pytest

from magnet_jax import decoding
from magnet_jax.audio import convert
from magnet_jax.generation import prompt_schedule, windows
from magnet_jax.generation.pipeline import Cancelled, tempo_loop_samples
from magnet_jax.generation.prompts import Prompt, read_prompts_file
from magnet_jax.generation.window_program import keys, window_program

A, B = 'calm piano', 'fast drums'


@pytest.fixture(scope='module')
def plain(pipeline):
  """Today's tokens: 0.6 s (one window) and 1.2 s (three windows) of A, seed 3."""
  return {0.6: pipeline.generate_tokens([A], duration=0.6, seed=3),
          1.2: pipeline.generate_tokens([A], duration=1.2, seed=3)}


def test_null_condition_as_data_reproduces_the_reference_program_bit_for_bit(pipeline, plain):
  cond, cond_mask, _ = pipeline.condition([A])
  example_keys = keys(np.array([3], np.int32), 0, 0)  # the pipeline's key of example 0, pass 0, window 0
  reference = decoding.generate(pipeline.lm_params, cond, cond_mask, example_keys, lm_config=pipeline.lm_config,
                                decoding=pipeline.decoding, length=30)  # null rows built inside the program
  np.testing.assert_array_equal(plain[0.6], np.asarray(reference))
  for null in ([None], ['']):  # a negative prompt that is the null condition: plain CFG exactly
    np.testing.assert_array_equal(pipeline.generate_tokens([A], duration=0.6, seed=3, negative=null), plain[0.6])


def test_negative_prompt_is_the_unconditional_half_given_as_data(pipeline, plain, recorded):
  steered = pipeline.generate_tokens([A], duration=0.6, seed=3, negative='distorted noise')
  assert np.any(steered != plain[0.6])
  [(_, _, out, (cond, cond_mask, uncond, uncond_mask))] = recorded
  negative, negative_mask, _ = pipeline.condition(['distorted noise'])
  np.testing.assert_array_equal(uncond[..., :negative.shape[1], :], negative)
  np.testing.assert_array_equal(uncond_mask[:, :negative.shape[1]], negative_mask)
  assert not uncond_mask[:, negative.shape[1]:].any() and not cond_mask[:, pipeline.condition([A])[0].shape[1]:].any()
  with pytest.raises(ValueError, match='2 negative prompts for 1 descriptions'):
    pipeline.generate_tokens([A], duration=0.6, negative=['a', 'b'])


def test_a_one_text_schedule_is_plain_generation(pipeline, plain):
  for duration in (0.6, 1.2):
    np.testing.assert_array_equal(pipeline.generate_tokens([[(0, A)]], duration=duration, seed=3), plain[duration])
  for total, prefix in [(60, 0), (100, 0), (100, 32), (45, 20), (30, 0), (31, 0)]:  # no change: `plan`'s windows
    known = np.arange(total) < prefix
    starts, fresh = windows.scheduled_plan(total, 30, 15, prefix, [])
    assert starts == windows.plan(known, 30, 15), (total, prefix)


def test_a_change_at_a_window_boundary_conditions_each_window_on_its_text(pipeline, plain, recorded):
  codes = pipeline.generate_tokens([[(0, A), (0.6, B)]], duration=1.2, seed=3)  # change at frame 30
  assert windows.scheduled_plan(60, 30, 15, 0, [30]) == ([0, 15, 30], [0, 30, 45])
  texts = [A, B, B]
  for (_, known, _, (cond, *_)), text, given in zip(recorded, texts, (0, 15, 15), strict=True):
    np.testing.assert_array_equal(cond, pipeline.condition([text])[0])
    np.testing.assert_array_equal(known[0], np.arange(30) < given)
  np.testing.assert_array_equal(codes[..., :30], plain[1.2][..., :30])  # A's window, as plain A generates it
  assert np.any(codes[..., 30:] != plain[1.2][..., 30:])
  chunks = list(pipeline.stream([[(0, A), (0.6, B)]], duration=1.2, seed=3))
  hop = pipeline.codec_config.hop_length
  assert [c.shape[-1] // hop for c in chunks] == [22, 15, 23]  # cuts mid-way through the tokens windows share


def test_a_change_inside_a_window_regenerates_from_its_frame(pipeline, plain, recorded):
  codes = pipeline.generate_tokens([[(0, A), (0.3, B)]], duration=0.6, seed=3)  # change at frame 15 of 30
  assert len(recorded) == 2
  (_, _, _, (first, *_)), (_, known, _, (second, *_)) = recorded
  np.testing.assert_array_equal(first, pipeline.condition([A])[0])
  np.testing.assert_array_equal(second, pipeline.condition([B])[0])
  np.testing.assert_array_equal(known[0], np.arange(30) < 15)
  np.testing.assert_array_equal(codes[..., :15], plain[0.6][..., :15])


def test_schedules_from_python_flags_and_prompt_files(tmp_path):
  assert prompt_schedule.entries('x') == ((0.0, 'x'),)
  assert prompt_schedule.entries([(0, 'a'), ('30', 'b')]) == ((0.0, 'a'), (30.0, 'b'))
  assert prompt_schedule.text_at(((0.0, 'a'), (30.0, 'b')), 29.9) == 'a'
  assert prompt_schedule.parse_entry('30:add drums: loud') == (30.0, 'add drums: loud')
  assert Prompt.scheduled([(0, 'a'), (3, 'b')]).text == '0:a | 3:b'
  for bad, message in [([], 'at least one'), ([(5, 'a')], 'start at 0 s'), ([(0, 'a'), (0, 'b')], 'strictly'),
                       ([('x', 'a')], r'must be \(seconds, text\)')]:
    with pytest.raises(ValueError, match=message):
      prompt_schedule.entries(bad)
  with pytest.raises(ValueError, match='each --prompt is SECONDS:TEXT'):
    prompt_schedule.parse_entry('ambient pads')
  (tmp_path / 'p.jsonl').write_text('{"schedule": [[0, "a"], [2.5, "b"]], "seed": 4, "negative": "noise"}\n')
  [prompt] = read_prompts_file(tmp_path / 'p.jsonl')
  assert prompt.schedule == ((0.0, 'a'), (2.5, 'b')) and prompt.seed == 4 and prompt.negative == 'noise'
  (tmp_path / 'p.jsonl').write_text('{"schedule": [[1, "a"]]}\n')
  with pytest.raises(ValueError, match='p.jsonl:1: "schedule" must be'):
    read_prompts_file(tmp_path / 'p.jsonl')


def test_step_progress_variant_same_tokens_every_step_once_and_cancel_stops(pipeline, plain):
  steps = []
  codes = pipeline.generate_tokens([A], duration=1.2, seed=3, on_step=lambda done, total: steps.append((done, total)))
  np.testing.assert_array_equal(codes, plain[1.2])
  total = 3 * pipeline.decoding.num_steps  # three windows
  assert steps == [(done, total) for done in range(1, total + 1)]
  steps.clear()

  def cancel_at_3(done, total):
    steps.append(done)
    return done == 3

  with pytest.raises(Cancelled, match='after decoding step 3 of 30'):
    for _ in pipeline.stream([A], duration=1.2, seed=3, on_step=cancel_at_3):
      pytest.fail('a cancelled stream yields nothing')
  assert steps == [1, 2, 3]  # the remaining steps of the window were skipped inside the program


def test_tempo_loop_has_exact_samples_and_a_seamless_wrap(pipeline):
  samples = tempo_loop_samples(101, 1, pipeline.sample_rate, beats_per_bar=1)  # 950 samples: 29.7 frames
  assert samples == 950 and pipeline.loop_frames(samples, pipeline.decoding) == 30
  loop = pipeline.generate_loop([B], samples=samples, seed=1)
  assert loop.shape == (1, 1, 950)
  # The frame-grid loop (960 samples), seamless as today's loops are, resampled as a periodic signal: played twice,
  # the result is the resampling of the seamless loop played twice, so its wrap is like any other point of it.
  grid = pipeline.decode_loop(pipeline.loop_tokens([B], pipeline.generate_tokens([B], duration=0.6, seed=1), seed=1))
  np.testing.assert_allclose(loop, convert.resample_loop(grid, 950), atol=1e-6)
  np.testing.assert_allclose(np.tile(loop, 2), convert.resample_loop(np.tile(grid, 2), 1900), atol=1e-5)
  with pytest.raises(ValueError, match='bpm > 0'):
    tempo_loop_samples(0, 4, 16000)


def test_progress_variant_is_the_only_program_with_host_callbacks(pipeline):
  args = (pipeline.lm_params, pipeline.codec_params, None, *pipeline.cfg_conditions([A]),
          keys(np.zeros(1, np.int32), 0, 0), np.zeros((1, 4, 30), np.int32), np.zeros((1, 30), bool), np.int32(0))
  kwargs = dict(lm_config=pipeline.lm_config, decoding=pipeline.decoding, codec_config=pipeline.codec_config,
                decoder=pipeline.decoder)
  for report in (False, True):
    hlo = window_program.lower(*args, **kwargs, report_steps=report).as_text()
    assert ('callback' in hlo) == report
