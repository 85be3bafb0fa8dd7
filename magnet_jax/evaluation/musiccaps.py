"""The MAGNeT paper's MusicCaps evaluation offline: generate every caption, then FAD, KL, CLAP and seconds per
sample against the MusicCaps reference clips.

  rows, missing = read_captions('musiccaps-public.csv', 'musiccaps/')
  result = evaluate(rows, 'runs/musiccaps', generate, quality.choose_models(METRICS), missing=missing,
                    draws=1000)

Inputs: the MusicCaps CSV (Google's musiccaps-public.csv: ytid, start_s, end_s, audioset_positive_labels,
aspect_list, caption, ...; only ytid and caption are read) and a folder of the reference clips, one file per row
named `<ytid>.wav` (or .flac, ...), already cut to [start_s, end_s) as MusicCaps distributions store them. Rows
without a reference file are counted and left out.

Generation goes through `generate(prompts, folder)` (the command passes `magnet-jax`'s `sample`): caption i of the
CSV is generated with seed `seed + i`, which names its file `<slug>_<seed + i>` (unique per row, whatever --limit or
resumption select) with its JSON sidecar. A run is resumable: rows whose file and sidecar exist are not generated
again. Generated files are renamed to their ytid only in memory, so KL pairs each with its reference.

Seconds per sample: from the sidecars, each batch's generation wall time (text encoding, decoding, the codec and the
file writes; its compilation excluded: `compile_s` is measured apart) divided by the files of the batch, averaged
over all rows; with --batch-size 1 it is the per-sample latency the paper reports, larger batches give throughput.
"""
import csv
import dataclasses
import os
from collections.abc import Callable, Sequence

from magnet_jax.evaluation import quality
from magnet_jax.generation import records
from magnet_jax.generation.prompts import Prompt, expand

METRICS = ('fad', 'kad', 'fad_inf', 'kl')  # by default; clap with a CLAP folder
COLUMNS = ('ytid', 'caption')  # the columns read; the others are ignored
REPORT = 'musiccaps.json'  # written in the output folder, with musiccaps.md beside it
GENERATED = 'generated'  # the subfolder of the generated files and their sidecars


@dataclasses.dataclass(frozen=True)
class Row:
  """One caption of the CSV with its reference clip."""
  index: int      # its position among the CSV's captions (seeds the generation)
  ytid: str
  caption: str
  reference: str  # the reference audio file


def read_captions(path: str, audio_dir: str, limit: int | None = None) -> tuple[list[Row], list[str]]:
  """(the first `limit` rows that have a reference file (all by default), the ytids of rows that have none).

  Raises:
    FileNotFoundError: no CSV; NotADirectoryError: no audio folder;
    ValueError: a CSV without the columns ytid and caption, without rows, with an empty caption or a repeated ytid,
      or whose rows have no reference file at all.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'no MusicCaps CSV at {path}')
  if not os.path.isdir(audio_dir):
    raise NotADirectoryError(f'no such audio folder: {audio_dir}')
  if limit is not None and limit < 1:
    raise ValueError(f'--limit must be >= 1, got {limit}')
  try:
    with open(path, newline='', encoding='utf-8') as f:
      reader = csv.DictReader(f)
      missing_columns = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
      if missing_columns:
        raise ValueError(f'{path} has no column {", ".join(missing_columns)} (columns: '
                         f'{", ".join(reader.fieldnames or ()) or "none"}); expected the MusicCaps CSV')
      entries = list(reader)
  except UnicodeDecodeError as e:
    raise ValueError(f'{path} is not UTF-8 text (byte {e.start}: {e.reason}); save the CSV as UTF-8') from e
  except csv.Error as e:  # e.g. a field over csv's limit of 128 KiB
    raise ValueError(f'{path}:{reader.line_num}: {e}') from e
  if not entries:
    raise ValueError(f'{path} has no captions')
  files = {quality.stem(name): os.path.join(audio_dir, name) for name in sorted(os.listdir(audio_dir))
           if name.lower().endswith(quality.AUDIO_EXTENSIONS)}
  rows, missing, seen = [], [], set()
  for index, entry in enumerate(entries):
    ytid, caption = (entry['ytid'] or '').strip(), (entry['caption'] or '').strip()
    if not ytid or not caption:
      raise ValueError(f'{path}:{index + 2}: empty ytid or caption')
    if ytid in seen:
      raise ValueError(f'{path}:{index + 2}: ytid {ytid} appears twice')
    seen.add(ytid)
    if ytid not in files:
      missing.append(ytid)
    elif limit is None or len(rows) < limit:
      rows.append(Row(index, ytid, caption, files[ytid]))
  if not rows:
    raise ValueError(f'none of the {len(entries)} captions of {path} has its reference clip (<ytid>.wav, .flac, '
                     f'...) in {audio_dir}')
  return rows, missing


def prompts(rows: Sequence[Row], seed: int = 0) -> list[Prompt]:
  """Row i's prompt: its caption with seed `seed + i` (i: the CSV position)."""
  return [Prompt(row.caption, seed=seed + row.index) for row in rows]


def generated_paths(rows: Sequence[Row], folder: str, seed: int = 0, file_format: str = 'wav') -> list[str]:
  """Where `magnet-jax` writes each row's audio (its sidecar: same stem, .json)."""
  return [os.path.join(folder, f'{request.stem}.{file_format}')
          for request in expand(prompts(rows, seed), 0, 1, None)]


def _finished(path: str) -> bool:
  return os.path.isfile(path) and os.path.isfile(records.sidecar_path(path))


def generation_summary(paths: Sequence[str]) -> dict:
  """From the files' sidecars: seconds per sample (the mean over files of their batch's generation seconds, its
  compilation excluded, divided by the batch's files) and the distinct checkpoints, presets and decoding settings
  used (more than one of each only when resumed runs differed)."""
  per_sample, used = [], {'checkpoint': [], 'preset': [], 'decoding': []}
  for path in paths:
    record = records.read_sidecar(path)
    per_sample.append(record['timings']['generate_s'] / len(record['batch_prompts']))
    for key, values in used.items():
      if record.get(key) not in values:
        values.append(record.get(key))
  return {'seconds_per_sample': round(sum(per_sample) / len(per_sample), 4), **used}


def evaluate(rows: Sequence[Row], out: str, generate: Callable[[list[Prompt], str], object],
             choice: quality.ModelChoice, seed: int = 0, missing: Sequence[str] = (), batch_size: int = 32,
             draws: int = 0,
             log: Callable[[str], None] = print) -> dict:
  """Generates the rows not generated yet into `out`/generated, scores them all, writes `out`/musiccaps.json and
  .md (atomically) and returns the report.

  Args:
    rows: from `read_captions`.
    out: the run's folder.
    generate: generate(prompts, folder) writes each prompt's file and sidecar into folder, as `magnet-jax` names them.
    choice: the metrics and their models, from `quality.choose_models`.
    seed: row i is generated with seed + i.
    missing: ytids without a reference (counted in the report).
    batch_size: patches per jitted batch of the evaluation models.
    draws: bootstrap draws of the captions for each metric's interval (0: none).
  """
  folder = os.path.join(out, GENERATED)
  paths = generated_paths(rows, folder, seed)
  todo = [row for row, path in zip(rows, paths, strict=True) if not _finished(path)]
  log(f'{len(rows)} captions ({len(missing)} without a reference clip left out): {len(rows) - len(todo)} generated '
      f'before, {len(todo)} to generate')
  if todo:
    generate(prompts(todo, seed), folder)
  unfinished = [path for path in paths if not _finished(path)]
  if unfinished:
    raise RuntimeError(f'{len(unfinished)} captions were not generated (first: {unfinished[0]})')
  models = choice.load(batch_size)
  ytids = [row.ytid for row in rows]
  reference = quality.embed_files(dataclasses.replace(models, scorer=None), [row.reference for row in rows], ytids,
                                  desc='reference')
  generated = quality.embed_files(models, paths, ytids, {row.ytid: row.caption for row in rows}, desc='generated')
  result = quality.report(generated, reference, choice.metrics, draws)
  result.update({**generation_summary(paths), 'captions': len(rows),
                 'missing_references': len(missing), 'reference_skipped': len(reference.skipped),
                 'generated_now': len(todo), 'generated_folder': os.path.abspath(folder)})
  table = paper_table(result)
  quality.write_report(os.path.join(out, REPORT), result, table)
  return result


def paper_table(result: dict) -> str:
  """The paper's columns (FAD, KL, CLAP score, seconds per sample) and KAD and FAD-inf, each headed with the model
  that measured it, each with its interval."""
  headers = {'fad': 'FAD', 'kad': 'KAD', 'fad_inf': 'FAD-inf', 'kl': 'KL', 'clap': 'CLAP'}
  cells = {f'{headers[name]} ({result["models"][name]})': quality.cell(result, name) for name in result['metrics']}
  cells.update({'s / sample': f'{result["seconds_per_sample"]:.3f}', 'clips': str(result['generated_clips'])})
  return quality.one_row_table(cells)
