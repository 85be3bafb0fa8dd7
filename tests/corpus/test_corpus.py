"""The synthetic corpus: determinism, manifests, captions that tell the truth, statistics that separate categories."""
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from magnet_jax.audio import audio_stats, mel_distance, onset_rate
from magnet_jax.corpus import (
  CATEGORIES,
  SPLITS,
  captions,
  compose,
  generate_corpus,
  make_clip,
  patterns,
  render,
  split_of,
  writer,
)
from magnet_jax.io import files

SR = 16000
DURATION = 1.5
NUM_CLIPS = 6
REQUIRED = {'path': str, 'duration': float, 'sample_rate': int, 'description': str, 'id': str, 'split': str,
            'category': str, 'instruments': list, 'drums': str, 'bpm': int, 'key': str, 'mode': str, 'tempo': str}


def _files(root: str) -> dict[str, bytes]:
  """Relative path -> bytes of every file under root."""
  out = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, root)] = f.read()
  return out


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('corpus'))
  records = generate_corpus(out, NUM_CLIPS, seed=3, sample_rate=SR, duration=DURATION, progress=False)
  return out, records


@pytest.fixture(scope='module')
def arrangements():
  """(arrangement, caption) of 600 draws: cheap, no audio."""
  out = []
  for i in range(600):
    rng = np.random.default_rng([11, i])
    a = compose.draw_arrangement(rng)
    out.append((a, captions.describe(a, rng)))
  return out


def test_same_seed_same_bytes_different_seed_different(corpus, tmp_path):
  out, _ = corpus
  files = _files(out)
  assert set(files) == {'manifest.jsonl', *(f'{s}.jsonl' for s in SPLITS),
                        *(f'audio/clip_{i:06d}.wav' for i in range(NUM_CLIPS))}
  generate_corpus(str(tmp_path / 'again'), NUM_CLIPS, seed=3, sample_rate=SR, duration=DURATION, progress=False)
  assert _files(str(tmp_path / 'again')) == files
  generate_corpus(str(tmp_path / 'other'), NUM_CLIPS, seed=4, sample_rate=SR, duration=DURATION, progress=False)
  other = _files(str(tmp_path / 'other'))
  assert all(other[f'audio/clip_{i:06d}.wav'] != files[f'audio/clip_{i:06d}.wav'] for i in range(NUM_CLIPS))
  assert other['manifest.jsonl'] != files['manifest.jsonl']


def test_workers_and_prefix_give_the_same_files(corpus, tmp_path):
  out, _ = corpus
  generate_corpus(str(tmp_path), 3, seed=3, sample_rate=SR, duration=DURATION, num_workers=2, progress=False)
  files, parallel = _files(out), _files(str(tmp_path))
  assert all(parallel[f'audio/clip_{i:06d}.wav'] == files[f'audio/clip_{i:06d}.wav'] for i in range(3))


def test_manifest_schema_and_files(corpus):
  out, records = corpus
  with open(os.path.join(out, 'manifest.jsonl')) as f:
    lines = [json.loads(line) for line in f]
  assert lines == records and [r['id'] for r in lines] == [f'clip_{i:06d}' for i in range(NUM_CLIPS)]
  for r in lines:
    for field, kind in REQUIRED.items():
      assert isinstance(r[field], kind), (field, r)
    info = soundfile.info(os.path.join(out, r['path']))
    assert (info.samplerate, info.channels, info.frames) == (SR, 1, round(DURATION * SR)) == (
        r['sample_rate'], 1, round(r['duration'] * SR))
    assert r['split'] == split_of(r['id']) and r['category'] in CATEGORIES
    assert r['tempo'] == captions.tempo_class(r['bpm']) and (r['drums'] == 'none') == ('drums' not in r['instruments'])
  by_split = []
  for split in SPLITS:
    with open(os.path.join(out, f'{split}.jsonl')) as f:
      by_split += [json.loads(line) for line in f if json.loads(line)['split'] == split]
  assert sorted(r['id'] for r in by_split) == [r['id'] for r in lines]


def test_splits_are_by_id_and_hold_out_about_a_tenth():
  splits = [split_of(writer.clip_id(i)) for i in range(4000)]
  assert splits == [split_of(writer.clip_id(i)) for i in range(4000)]
  assert 0.03 < splits.count('test') / 4000 < 0.07 and 0.03 < splits.count('valid') / 4000 < 0.07


def test_audio_is_finite_audible_and_unclipped(corpus):
  out, records = corpus
  for r in records:
    audio, _ = soundfile.read(os.path.join(out, r['path']), dtype='float32')
    assert np.isfinite(audio).all()
    assert audio_stats(audio, SR)['rms_db'] > -30.0, r
    assert 0.85 < np.abs(audio).max() <= render.PEAK + 1e-4, r


def test_arrangements_cover_the_space(arrangements):
  drawn = [a for a, _ in arrangements]
  assert {a.category for a in drawn} == set(CATEGORIES)
  assert {a.drums for a in drawn} == {*patterns.DRUM_PATTERNS, 'none'}
  assert {i for a in drawn for i in a.instruments} == {'drums', 'bass', 'piano', 'guitar', 'pad', 'flute', 'organ'}
  assert len({a.key for a in drawn}) == 24
  assert min(a.bpm for a in drawn) < 70 and max(a.bpm for a in drawn) > 160
  assert {captions.tempo_class(a.bpm) for a in drawn} == {'slow', 'moderate', 'fast'}


def test_captions_state_only_true_attributes(arrangements):
  for a, text in arrangements:
    said = text.replace('no drums', '')
    for instrument, words in captions.INSTRUMENT_WORDS.items():
      mentioned = any(w in said for w in words) or (instrument == 'drums' and 'drum' in said)
      assert mentioned == (instrument in a.instruments), (a, text)
    assert re.findall(r'(\d+) bpm', text, re.IGNORECASE) in ([], [str(a.bpm)]), (a, text)
    assert re.findall(r'in ([A-G][b#]? (?:major|minor))', text) in ([], [a.key]), (a, text)
    for tempo, words in captions.TEMPO_WORDS.items():
      if any(re.search(rf'(^|\s){w}\b', text) for w in words):
        assert tempo == captions.tempo_class(a.bpm), (a, text)
    for mode, words in captions.MOOD_WORDS.items():
      if any(w in text for w in words):
        assert mode == a.mode and a.instruments != ('drums',), (a, text)
    assert ('no drums' in text) <= (a.drums == 'none') and ('drone' in text) <= a.drone, (a, text)
  assert len({text for _, text in arrangements}) > 0.95 * len(arrangements)


def test_every_note_is_in_the_key(arrangements):
  for a, _ in arrangements[:200]:
    scale = {(a.root + step) % 12 for step in patterns.SCALES[a.mode]}
    parts = compose.compose(a, 5.0, np.random.default_rng(0))
    assert set(parts) == set(a.instruments)
    for instrument, notes in parts.items():
      assert notes and all(0 <= n.start < 5.0 for n in notes), (a, instrument)
      if instrument != 'drums':
        assert {n.pitch % 12 for n in notes} <= scale, (a, instrument)


def _stat(name: str, category: str, instrument: str | None = None, seeds=range(4)) -> list[float]:
  """`name` statistic of 3 s ground-truth clips forced to a category (and solo instrument)."""
  return [audio_stats(make_clip(s, 0, SR, 3.0, category, instrument).audio, SR)[name] for s in seeds]


def test_onset_rate_separates_drum_grooves_from_pad_drones():
  drums, pads = _stat('onset_rate', 'groove'), _stat('onset_rate', 'ambient')
  assert min(drums) >= 2.0 and max(pads) <= 0.5, (drums, pads)


def test_centroid_and_low_ratio_separate_solo_bass_from_solo_flute():
  bass, flute = _stat('centroid_hz', 'solo', 'bass'), _stat('centroid_hz', 'solo', 'flute')
  assert max(bass) < 450.0 and min(flute) > 900.0, (bass, flute)
  bass, flute = _stat('low_ratio', 'solo', 'bass'), _stat('low_ratio', 'solo', 'flute')
  assert min(bass) > 0.8 and max(flute) < 0.05, (bass, flute)


def test_onset_rate_counts_clicks():
  clicks = np.zeros(4 * SR)
  clicks[(np.arange(12) * SR / 3).astype(int) + SR // 10] = 1.0
  assert abs(onset_rate(clicks, SR) - 3.0) < 0.3
  assert onset_rate(np.sin(2 * np.pi * 220 * np.arange(4 * SR) / SR), SR) == 0.0


def test_mel_distance_orders_degradations():
  rng = np.random.default_rng(0)
  ref = make_clip(0, 1, SR, 3.0, 'band').audio
  noisy = lambda snr: ref + rng.standard_normal(len(ref)) * np.sqrt(np.mean(ref ** 2)) * 10 ** (-snr / 20)
  assert mel_distance(ref, ref, SR) == 0.0
  d = [mel_distance(ref, noisy(snr), SR) for snr in (40, 20, 0)]
  other = mel_distance(ref, make_clip(1, 1, SR, 3.0, 'ambient').audio, SR)
  assert 0.0 < d[0] < d[1] < d[2] and d[1] < other, (d, other)
  assert mel_distance(ref, np.concatenate([ref, np.zeros(320)]), SR) == 0.0  # a padded reconstruction
  assert abs(mel_distance(ref, 0.5 * ref, SR) - 20 * np.log10(2)) < 0.5  # -6 dB everywhere above the floor
  with pytest.raises(ValueError, match='non-empty audio'):
    mel_distance(ref, ref[:0], SR)


def test_atomic_write_leaves_nothing_on_error(tmp_path):
  target = tmp_path / 'a.wav'
  target.write_bytes(b'old')

  def fail(tmp):
    with open(tmp, 'wb') as f:
      f.write(b'partial')
    raise RuntimeError('disk full')

  with pytest.raises(RuntimeError, match='disk full'):
    files.atomic_write(str(target), fail)
  assert os.listdir(tmp_path) == ['a.wav'] and target.read_bytes() == b'old'


def test_failed_generation_leaves_only_complete_files(tmp_path, monkeypatch):
  write, calls = soundfile.write, []

  def flaky(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
      raise OSError('disk full')
    return write(*args, **kwargs)

  monkeypatch.setattr(soundfile, 'write', flaky)
  with pytest.raises(OSError, match='disk full'):
    generate_corpus(str(tmp_path), 3, seed=0, sample_rate=SR, duration=0.5, progress=False)
  assert _files(str(tmp_path)).keys() == {'audio/clip_000000.wav'}


def test_cli(tmp_path):
  command = [sys.executable, '-m', 'magnet_jax.apps.corpus', '--out', str(tmp_path), '--num-clips', '2', '--seed', '1',
             '--duration', '1', '--sample-rate', '8000', '--stats']
  run = subprocess.run(command, capture_output=True, text=True, check=False)
  assert run.returncode == 0, run.stderr
  assert 'wrote 2 clips' in run.stdout and 'onset_rate' in run.stdout
  with open(tmp_path / 'manifest.jsonl') as f:
    assert [json.loads(line)['sample_rate'] for line in f] == [8000, 8000]
  bad = subprocess.run(command[:5] + ['0'], capture_output=True, text=True, check=False)
  assert bad.returncode != 0 and 'error' in bad.stderr


# sha256(audio bytes + caption)[:16] of clips 0..7 of seed 0 (16 kHz, 2 s), recorded before the 'mallets' style
# was added: new styles must not change what the default corpus renders.
DEFAULT_CLIPS = ('54d66e8a8d34cc74', '5a7b39ad7847d7c0', 'f14e3b86fda23ef4', '916cf10f410e21ae', 'be4584cae79d6228',
                 '57c7fe26e414bf7e', '3ac4b3acae97a6cb', '564213adb1a3b01f')


def test_default_corpus_unchanged_by_extra_styles():
  for i, expected in enumerate(DEFAULT_CLIPS):
    clip = writer.make_clip(0, i, 16000, 2.0)
    assert hashlib.sha256(clip.audio.tobytes() + clip.description.encode()).hexdigest()[:16] == expected, i


def test_mallets_style_is_fast_marimba_with_true_captions():
  rates = []
  for i in range(4):
    clip = writer.make_clip(0, i, 16000, 5.0, category='mallets')
    assert clip.arrangement.instruments == ('marimba',) and clip.arrangement.drums == 'none'
    assert 'marimba' in clip.description and 100 <= clip.arrangement.bpm <= 150
    rates.append(audio_stats(clip.audio, 16000)['onset_rate'])
  assert np.median(rates) > 4.0  # sixteenth notes at 100-150 bpm
  with pytest.raises(ValueError, match=r"category='kazoo'; expected one of"):
    writer.generate_corpus('/nonexistent', 1, 0, category='kazoo')
