"""Codec-token datasets: building from audio files, the grain loader (sharding, resume, captions), bad input, and
train.py reading real shards."""
import json
import os
import subprocess
import sys
import zlib

import jax
import ml_collections
import numpy as np
import pytest
import soundfile
import tensorflow_datasets as tfds

from magnet_jax.codec import CodecConfig, encode, init, save_codec
from magnet_jax.corpus.writer import generate_corpus
from magnet_jax.data import loader
from magnet_jax.data.audio import find_splits, load_audio
from magnet_jax.data.builder import SegmentOptions, SegmentTokenizer, build
from magnet_jax.data.captions import CaptionAugmentation, augment_description, word_dropout
from magnet_jax.models.config import MagnetConfig
from magnet_jax.text import TextEncoder
from tests.helpers import load_config

# 8 kHz, hop 160: 50 frames/s as MAGNeT's codec, so configs/tiny.py (0.6 s segments, T = 30) fits.
CODEC = CodecConfig(sample_rate=8000, ratios=(8, 5, 4), n_filters=4, dimension=16, n_q=4, bins=32, lstm=0)
SEGMENT = 0.6
FRAMES = 30
SHORT_FRAMES = 12  # 0.25 s * 8000 // 160
NUM_RECORDS = 12   # 4 corpus clips x 2 segments + stereo x 3 + short x 1


@pytest.fixture(scope='module')
def params():
  return init(jax.random.key(0), CODEC)


@pytest.fixture(scope='module')
def audio_dir(tmp_path_factory):
  """4 mono 16 kHz corpus clips (1.5 s), a stereo 22.05 kHz FLAC (1.8 s), a short 8 kHz WAV (0.25 s), a corrupt
  file and a missing one, all in one manifest.jsonl."""
  folder = str(tmp_path_factory.mktemp('audio'))
  lines = generate_corpus(folder, 4, seed=0, sample_rate=16000, duration=1.5, progress=False)
  for split in ('train', 'valid', 'test'):
    os.remove(os.path.join(folder, f'{split}.jsonl'))
  rng = np.random.default_rng(0)
  stereo = np.stack([np.sin(np.arange(39690) * 0.05), rng.uniform(-0.5, 0.5, 39690)], axis=1)
  soundfile.write(os.path.join(folder, 'audio', 'stereo.flac'), stereo, 22050)
  soundfile.write(os.path.join(folder, 'audio', 'short.wav'), rng.uniform(-0.5, 0.5, 2000), 8000)
  with open(os.path.join(folder, 'audio', 'corrupt.wav'), 'wb') as f:
    f.write(b'RIFF\x24\x00\x00\x00WAVEfmt ' + bytes(rng.integers(0, 256, 200, dtype=np.uint8)))
  lines += [{'path': 'audio/stereo.flac', 'description': 'a stereo take', 'genre': 'Jazz', 'bpm': '96',
             'moods': 'calm, warm'},
            {'path': 'audio/short.wav', 'description': 'a short noise burst'},
            {'path': 'audio/corrupt.wav', 'description': 'broken'},
            {'path': 'audio/missing.wav', 'description': 'not there'}]
  with open(os.path.join(folder, 'manifest.jsonl'), 'w') as f:
    f.writelines(json.dumps(line) + '\n' for line in lines)
  return folder


@pytest.fixture(scope='module')
def built(audio_dir, params, tmp_path_factory):
  """(dataset folder, tokenizer) of the audio with captions stored as text."""
  tokenizer = SegmentTokenizer(CODEC, params, SegmentOptions(SEGMENT), batch_size=4)
  return build(str(tmp_path_factory.mktemp('tokens')), find_splits(audio_dir), tokenizer, 'minilm'), tokenizer


def _records(folder: str) -> list[dict]:
  source = tfds.builder_from_directory(folder).as_data_source('train')
  return [source[i] for i in range(len(source))]


class HashText:
  """A stand-in text encoder: token j of a caption is a vector fixed by (caption, j); one token per word."""
  dim = 8

  def encode(self, captions, pad_to):
    length = pad_to * max(1, -(-max(len(c.split()) for c in captions) // pad_to))
    states = np.zeros((len(captions), length, self.dim), np.float32)
    mask = np.zeros((len(captions), length), bool)
    for i, caption in enumerate(captions):
      n = len(caption.split())
      states[i, :n] = np.random.default_rng(zlib.crc32(caption.encode())).normal(size=(n, self.dim))
      mask[i, :n] = True
    return states, mask


def _source(folder, batch_size=4, index=0, count=1, **kwargs):
  records = tfds.builder_from_directory(folder).as_data_source('train')
  kwargs = {'text_encoder': HashText(), 'caption_len': 8, **kwargs}
  return loader.TokenSource(records, batch_size, index, count, seed=3, **kwargs)


def _take(source, n):
  return [next(source) for _ in range(n)]


def _rows(batches):
  return [codes.tobytes() for batch in batches for codes in batch['codes']]


def test_build_shapes_ranges_padding_and_skips(built):
  folder, tokenizer = built
  records = _records(folder)
  assert len(records) == NUM_RECORDS
  for r in records:
    assert r['codes'].shape == (CODEC.n_q, FRAMES) and r['codes'].dtype == np.int16
    assert 0 <= r['codes'].min() and r['codes'].max() < CODEC.bins
  frames = {(r['path'].decode(), round(float(r['start']), 3)): int(r['num_frames']) for r in records}
  assert frames[('audio/short.wav', 0.0)] == SHORT_FRAMES
  assert frames[('audio/stereo.flac', 1.2)] == FRAMES  # 0.6 s of its last 0.6 s: not padded
  assert sorted(frames.values()).count(FRAMES) == NUM_RECORDS - 1
  stats = tokenizer.stats['train']
  assert (stats['files'], stats['segments']) == (6, NUM_RECORDS)
  assert sorted(name for name, _ in stats['skipped']) == ['audio/corrupt.wav', 'audio/missing.wav']
  metadata = tfds.builder_from_directory(folder).info.metadata
  assert metadata['codec'] == {'sample_rate': 8000, 'channels': 1, 'n_q': 4, 'bins': 32, 'frame_rate': 50.0,
                               'hop_length': 160}
  assert metadata['segment']['frames'] == FRAMES and metadata['stats']['train']['segments'] == NUM_RECORDS
  assert metadata['text'] == {'encoder': 'minilm', 'cached': False, 'dim': 0}


def test_records_hold_their_segment_codes_and_caption(built, audio_dir, params):
  folder, _ = built
  captions = {line['path']: line['description'] for line in map(json.loads, open(f'{audio_dir}/manifest.jsonl'))}
  records = _records(folder)
  for r in records:
    assert r['description'].decode() == captions[r['path'].decode()]
  # Recompute two segments from the audio: the stereo file's second one (resampled, mixed) and the padded short one.
  for path, start in (('audio/stereo.flac', 0.6), ('audio/short.wav', 0.0)):
    record = next(r for r in records if r['path'].decode() == path and np.isclose(r['start'], start))
    audio = load_audio(os.path.join(audio_dir, path), CODEC.sample_rate, 1)[:, round(start * 8000):][:, :4800]
    segment = np.zeros((1, 1, 4800), np.float32)
    segment[0, :, :audio.shape[1]] = audio
    np.testing.assert_array_equal(record['codes'], np.asarray(encode(params, segment, CODEC))[0])
  assert json.loads(next(r for r in records if b'stereo' in r['path'])['attributes']) == {
      'bpm': '96', 'genre': 'Jazz', 'moods': 'calm, warm'}


def test_loader_batches_align_codes_padding_and_captions(built):
  folder, _ = built
  by_codes = {r['codes'].astype(np.int32).tobytes(): r for r in _records(folder)}
  text = HashText()
  for batch in _take(_source(folder), 6):  # two epochs
    assert batch['codes'].shape == (4, 4, FRAMES) and batch['codes'].dtype == np.int32
    assert batch['cond'].shape == (4, 8, 8) and batch['cond_mask'].shape == (4, 8)
    for i, codes in enumerate(batch['codes']):
      record = by_codes[codes.tobytes()]
      np.testing.assert_array_equal(batch['padding_mask'][i], np.arange(FRAMES) < record['num_frames'])
      states, mask = text.encode([record['description'].decode()], pad_to=8)
      np.testing.assert_array_equal(batch['cond'][i], states[0, :8])
      np.testing.assert_array_equal(batch['cond_mask'][i], mask[0, :8])


def test_processes_share_each_epoch_exactly_once(built):
  folder, _ = built
  alone = _take(_source(folder, batch_size=6), 2)
  parts = [_take(_source(folder, batch_size=6, index=p, count=2), 2) for p in range(2)]
  assert sorted(_rows(parts[0] + parts[1])) == sorted({r['codes'].astype(np.int32).tobytes()
                                                       for r in _records(folder)})
  for step in range(2):  # with 0 workers each step's examples are the single process's
    assert sorted(_rows([parts[0][step], parts[1][step]])) == sorted(_rows([alone[step]]))


@pytest.mark.parametrize('workers', [0, 1])
def test_resume_continues_the_batch_sequence(built, workers):
  folder, _ = built
  kwargs = {'batch_size': 4, 'count': 2, 'worker_count': workers,
            'augmentation': CaptionAugmentation(word_dropout=0.5)}
  first = _source(folder, index=1, **kwargs)
  _take(first, 3)
  state = json.loads(json.dumps(first.get_state()))
  expected = _take(first, 4)
  resumed = _source(folder, index=1, **kwargs)
  resumed.set_state(state)
  other = _source(folder, index=0, **kwargs)  # the state saved by process 0 restores process 1 too
  _take(other, 3)
  assert other.get_state() == state
  for got, want in zip(_take(resumed, 4), expected, strict=True):
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])
  single = _source(folder, batch_size=4, worker_count=workers)
  if workers:
    with pytest.raises(ValueError, match='same process count'):
      single.set_state(state)
  else:  # one process continues with the records the two would have read together
    other.set_state(state)
    single.set_state(state)
    assert sorted(_rows(_take(single, 4))) == sorted(_rows(expected + _take(other, 4)))


def test_cached_text_states(audio_dir, params, tmp_path):
  text = TextEncoder.minilm()
  tokenizer = SegmentTokenizer(CODEC, params, SegmentOptions(SEGMENT, offsets='random', seed=1), 8, text)
  folder = build(str(tmp_path), find_splits(audio_dir), tokenizer, 'minilm')
  records = _records(folder)
  starts = sorted(float(r['start']) for r in records if r['path'] == b'audio/stereo.flac')
  assert len(starts) == 3 and starts != [0.0, 0.6, 1.2] and max(starts) <= 1.8 - 0.8 * SEGMENT
  record = next(r for r in records if r['path'] == b'audio/short.wav')
  states, mask = text.encode(['a short noise burst'])
  assert record['text_states'].dtype == np.float16 and record['text_states'].shape == (mask.sum(), 384)
  np.testing.assert_allclose(record['text_states'], np.asarray(states)[0, :mask.sum()], rtol=1e-3, atol=1e-3)
  source = loader.TokenSource(tfds.builder_from_directory(folder).as_data_source('train'), 12, caption_len=4,
                              text_dim=384)
  batch = next(source)
  assert batch['cond'].shape == (12, 4, 384) and batch['cond_mask'].all()  # every caption has >= 4 tokens
  with pytest.raises(ValueError, match='augmentation needs captions'):
    loader.TokenSource(tfds.builder_from_directory(folder).as_data_source('train'), 12, text_dim=384,
                       augmentation=CaptionAugmentation(merge_text_p=0.25))


def test_caption_augmentation_follows_audiocraft():
  rng = np.random.default_rng(0)
  attributes = {'genre': 'Jazz', 'bpm': '96', 'moods': 'calm, warm', 'key': 'C major, A minor', 'tempo': 'slow'}
  merged = augment_description('smooth sax.', attributes, rng, 1.0, 0.0, 1.0)
  head, *pairs = merged.split('. ')
  assert head == 'smooth sax' and sorted(pairs) == ['bpm: 96.0', 'genre: jazz', 'moods: calm, warm']
  assert sorted(augment_description('smooth sax', attributes, rng, 1.0, 1.0, 1.0).split('. ')) == [
      'bpm: 96.0', 'genre: jazz', 'moods: calm, warm']
  assert augment_description('smooth sax', attributes, rng, 1.0, 1.0, 0.0) == ''  # nothing kept, no description
  assert augment_description('smooth sax', attributes, rng, 0.0, 1.0, 1.0) == 'smooth sax.'  # audiocraft's join
  assert word_dropout('a b c d', rng, 1.0) == '' and word_dropout('a b c d', rng, 0.0) == 'a b c d'


def test_captions_from_files_beside_the_audio(tmp_path):
  for name in ('a', 'b', 'c'):
    soundfile.write(tmp_path / f'{name}.wav', np.zeros(800), 8000)
  (tmp_path / 'a.txt').write_text('  plain caption \n')
  (tmp_path / 'b.json').write_text(json.dumps({'description': 'json caption', 'genre': 'rock'}))
  entries = find_splits(str(tmp_path))['train']
  assert [(e.name, e.description, dict(e.attributes)) for e in entries] == [
      ('a.wav', 'plain caption', {}), ('b.wav', 'json caption', {'genre': 'rock'}), ('c.wav', '', {})]


def test_split_manifests(tmp_path):
  (tmp_path / 'train.jsonl').write_text('{"path": "a.wav", "description": "A", "genre": "pop"}\n')
  (tmp_path / 'valid.jsonl').write_text('')
  (tmp_path / 'manifest.jsonl').write_text('{"path": "ignored.wav"}\n')
  splits = find_splits(str(tmp_path))
  assert list(splits) == ['train'] and splits['train'][0].path == str(tmp_path / 'a.wav')
  (tmp_path / 'train.jsonl').write_text('\n')
  with pytest.raises(ValueError, match='every split manifest'):
    find_splits(str(tmp_path))


@pytest.mark.parametrize('content, message', [
    ('', 'empty manifest'), ('{"path": "a.wav"}\nnot json\n', 'manifest.jsonl:2: not valid JSON'),
    ('{"description": "no path"}\n', 'manifest.jsonl:1: expected a JSON object with a "path"')])
def test_bad_manifests_are_one_clear_error(tmp_path, content, message):
  (tmp_path / 'manifest.jsonl').write_text(content)
  with pytest.raises(ValueError, match=message):
    find_splits(str(tmp_path))


def test_bad_input_errors(tmp_path, params, built):
  with pytest.raises(ValueError, match='audio folder not found'):
    find_splits(str(tmp_path / 'nope'))
  with pytest.raises(ValueError, match='no audio files'):
    find_splits(str(tmp_path))
  with pytest.raises(ValueError, match='whole number of codec frames'):
    SegmentTokenizer(CODEC, params, SegmentOptions(0.61))
  with pytest.raises(FileExistsError, match='already holds a dataset'):
    build(os.path.dirname(os.path.dirname(built[0])), {}, SegmentTokenizer(CODEC, params, SegmentOptions(SEGMENT)))
  (tmp_path / 'x.wav').write_bytes(b'not audio')
  with pytest.raises(ValueError, match='none of its 1 audio files'):
    build(str(tmp_path / 'out'), find_splits(str(tmp_path)), SegmentTokenizer(CODEC, params, SegmentOptions(SEGMENT)))
  for data_dir, message in (('', 'data.dir is empty'), (str(tmp_path / 'nope'), 'not found'),
                            (str(tmp_path), 'no codec-token dataset')):
    with pytest.raises(FileNotFoundError, match=message):
      loader.find_dataset(data_dir)
  metadata = tfds.builder_from_directory(built[0]).info.metadata
  model = MagnetConfig(n_q=8, card=64, frame_rate=25, segment_duration=SEGMENT)
  with pytest.raises(ValueError, match=r'n_q\): dataset 4, config 8; .*card\): dataset 32, config 64; .*frame_rate\)'
                                       r': dataset 50.0, config 25; .*dataset 30, config 15; .*dataset 8000, config '
                                       '16000'):
    loader.check_dataset_matches(metadata, model, model.sequence_length, 16000)
  loader.check_dataset_matches(metadata, MagnetConfig(card=32, segment_duration=SEGMENT), FRAMES, 8000)


def _tfds_config(data_dir: str, **overrides) -> ml_collections.ConfigDict:
  return load_config('tiny', **{'data.source': 'tfds', 'data.dir': data_dir, 'data.worker_count': 0,
                                'data.caption_len': 16, 'model.text_dim': 384, **overrides})


def test_make_source_checks_the_config(built):
  folder = os.path.dirname(os.path.dirname(built[0]))  # prepare's --out folder
  for overrides, message in (({'model.text_dim': 16}, 'gives 384-d states, model.text_dim is 16'),
                             ({'data.split': 'valid'}, "the dataset has \\['train'\\]"),
                             ({'model.card': 64}, 'codebook size')):
    config = _tfds_config(folder, **overrides)
    with pytest.raises(ValueError, match=message):
      loader.make_tfds_source(config, MagnetConfig.from_dict(config.model.to_dict()), 0, 1)


def test_prepare_and_train_py_on_real_shards(audio_dir, params, tmp_path):
  save_codec(tmp_path / 'codec', CODEC, params)
  run = lambda *args: subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)
  prepared = run('-m', 'magnet_jax.apps.prepare', f'--audio={audio_dir}', f'--out={tmp_path / "data"}',
                 f'--codec={tmp_path / "codec"}', '--text=minilm', f'--segment-duration={SEGMENT}')
  assert prepared.returncode == 0, prepared.stderr[-2000:]
  assert f'train: {NUM_RECORDS} segments of {FRAMES} frames from 6 files, 2 skipped' in prepared.stdout

  flags = ['--config=configs/tiny.py', '--config.data.source=tfds', '--config.model.text_dim=384',
           '--config.data.caption_len=16', '--config.data.worker_count=0', '--config.train.log_every=1',
           '--config.train.batch_size=4']
  for steps, resume in ((3, []), (5, ['--resume'])):  # the resumed run restores the loader from the checkpoint
    trained = run('train.py', *flags, f'--workdir={tmp_path / "run"}', f'--config.data.dir={tmp_path / "data"}',
                  f'--config.train.num_steps={steps}', *resume)
    assert trained.returncode == 0, trained.stderr[-2000:]
  rows = [json.loads(line) for line in open(tmp_path / 'run' / 'metrics.jsonl')]
  train_rows = [r for r in rows if 'loss' in r]  # validation rows (valid_*) come at their own steps
  assert [r['step'] for r in train_rows] == [1, 2, 3, 4, 5] and all(np.isfinite(r['loss']) for r in train_rows)
  missing = run('train.py', *flags, f'--workdir={tmp_path / "bad"}', f'--config.data.dir={tmp_path / "nope"}')
  assert missing.returncode != 0 and 'data dir not found' in missing.stderr.strip().splitlines()[-1]


def test_held_out_validation_split(tmp_path):
  names = [f'{i:02d}.wav' for i in range(40)]
  (tmp_path / 'manifest.jsonl').write_text(''.join(
      json.dumps({'path': n, 'description': n, 'part': 'valid' if i % 4 == 0 else 'train'}) + '\n'
      for i, n in enumerate(names)))
  splits = find_splits(str(tmp_path), valid_fraction=0.25)
  valid = {e.name for e in splits['valid']}
  assert set(splits) == {'train', 'valid'} and 0 < len(valid) < 20
  assert valid.isdisjoint(e.name for e in splits['train'])
  assert {e.name for e in find_splits(str(tmp_path), valid_fraction=0.25)['valid']} == valid  # by name, fixed
  by_column = find_splits(str(tmp_path), split_column='part')
  assert sorted(e.name for e in by_column['valid']) == names[::4]
  with pytest.raises(ValueError, match=r'valid_fraction=1.5; expected a fraction in \(0, 1\)'):
    find_splits(str(tmp_path), valid_fraction=1.5)
  with pytest.raises(ValueError, match="00.wav: genre=None; expected one of"):
    find_splits(str(tmp_path), split_column='genre')
  with pytest.raises(ValueError, match='not both'):
    find_splits(str(tmp_path), valid_fraction=0.1, split_column='part')
  with pytest.raises(ValueError, match='leaves no valid file'):
    find_splits(str(tmp_path), valid_fraction=0.0001)
  (tmp_path / 'valid.jsonl').write_text(json.dumps({'path': '00.wav'}) + '\n')
  (tmp_path / 'train.jsonl').write_text(json.dumps({'path': '01.wav'}) + '\n')
  with pytest.raises(ValueError, match='already has split manifests'):
    find_splits(str(tmp_path), valid_fraction=0.1)
