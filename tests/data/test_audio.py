"""Scanning a user's audio folder: symbolic link loops and duplicate links visit each real file once; captions that
are not UTF-8 skip their file (listed, the run goes on); files without a caption are counted."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from magnet_jax.codec import EMBEDDED_CODEC_DIR, CodecConfig
from magnet_jax.data import builder
from magnet_jax.data.audio import find_splits, scan_folder
from tests.helpers import REPO_ROOT, tmpfs

CODEC = CodecConfig(sample_rate=8000, ratios=(8, 5, 4), n_filters=4, dimension=16, n_q=4, bins=32, lstm=0)


def _wav(path, seconds=0.3):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  soundfile.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, int(8000 * seconds)), 8000)


def test_link_loops_and_duplicate_links_visit_each_file_once(tmp_path):
  _wav(tmp_path / 'real' / 'a.wav')
  _wav(tmp_path / 'real' / 'deep' / 'b.wav')
  os.symlink(tmp_path, tmp_path / 'real' / 'deep' / 'loop')         # back to the top: a loop
  os.symlink(tmp_path / 'real', tmp_path / 'again')                  # a second way into real/
  os.symlink(tmp_path / 'real' / 'a.wav', tmp_path / 'a-link.wav')   # a second name of a.wav
  _wav(tmp_path / 'outside' / 'c.wav')
  os.symlink(tmp_path / 'outside', tmp_path / 'real' / 'more')       # a link to files seen nowhere else: followed
  skipped = []
  entries = scan_folder(str(tmp_path), skipped)
  names = [entry.name for entry in entries]
  assert names == ['outside/c.wav', 'real/a.wav', 'real/deep/b.wav'], names
  assert sorted(os.path.relpath(path, tmp_path) for path in skipped) == [
      'a-link.wav', 'again', 'real/deep/loop', 'real/more'], skipped
  assert [entry.name for entry in find_splits(str(tmp_path))['train']] == names


def test_a_link_is_kept_when_it_is_the_only_way_to_a_file(tmp_path):
  _wav(tmp_path / 'elsewhere' / 'x.wav')
  (tmp_path / 'in').mkdir()
  os.symlink(tmp_path / 'elsewhere', tmp_path / 'in' / 'linked')
  assert [entry.name for entry in scan_folder(str(tmp_path / 'in'))] == ['linked/x.wav']


def test_bad_caption_skips_its_file_and_uncaptioned_files_are_counted(tmp_path, monkeypatch):
  # What is under test is which files are read and counted, not the codec: its encoder is a stand-in.
  monkeypatch.setattr(builder, 'encode', lambda params, audio, c: np.zeros((audio.shape[0], c.n_q, 10), np.int32))
  audio = tmp_path / 'audio'
  for name in ('a', 'b', 'c', 'd'):
    _wav(audio / f'{name}.wav')
  (audio / 'a.txt').write_bytes(b'caf\xe9 latin-1 caption\n')      # not UTF-8
  (audio / 'b.json').write_bytes(b'{"description": "\xff"}')        # not UTF-8 either
  (audio / 'c.txt').write_text('a fine caption')                     # d.wav has no caption
  splits = find_splits(str(audio))
  assert [e.name for e in splits['train']] == ['a.wav', 'b.wav', 'c.wav', 'd.wav']
  tokenizer = builder.SegmentTokenizer(CODEC, {}, builder.SegmentOptions(0.2), batch_size=2)
  assert len(list(tokenizer.examples(splits['train'], 'train'))) == 2  # one 0.2 s segment per readable file
  stats = tokenizer.stats['train']
  assert stats['files'] == 2 and stats['uncaptioned'] == 1
  assert [name for name, _ in stats['skipped']] == ['a.wav', 'b.wav']
  reasons = [reason for _, reason in stats['skipped']]
  assert 'a.txt: not a readable UTF-8 caption' in reasons[0] and 'b.json: not a readable JSON object' in reasons[1]


def test_a_manifest_that_is_not_utf8_is_one_line_naming_it(tmp_path):
  (tmp_path / 'manifest.jsonl').write_bytes(b'{"path": "a.wav", "description": "\xff"}\n')
  with pytest.raises(ValueError, match=r'manifest.jsonl: not UTF-8 text'):
    find_splits(str(tmp_path))


def test_prepare_onto_a_full_disk_is_one_line(tmp_path):
  """TFDS reports the shard it cannot finish as a RuntimeError: prepare names the full device in one line."""
  for i in range(3):
    _wav(tmp_path / 'audio' / f'clip{i}.wav', seconds=2.0)
  with tmpfs(tmp_path / 'full', '64k') as out:
    run = subprocess.run([sys.executable, '-m', 'magnet_jax.apps.prepare', f'--audio={tmp_path / "audio"}',
                          f'--out={out}', f'--codec={EMBEDDED_CODEC_DIR}', '--segment-duration=1'],
                         capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
  assert run.returncode == 1, run.stderr[-2000:]
  assert run.stderr.strip().splitlines()[-1] == (
      f'python -m magnet_jax.apps.prepare: error: no space left on device writing the dataset to {out}')
