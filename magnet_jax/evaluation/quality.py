"""Quality of generated audio against references, one model per role: FAD (an embedder), KL (a classifier) and
the CLAP score (a text-audio model).

  models = choose_models(('fad', 'kl'), embedder='vggish', vggish_checkpoint='vggish-10086976.pth').load()
  generated = embed_folder(models, 'outputs/', texts=read_texts(list_audio('outputs/')))
  reference = embed_folder(models, 'references/')      # or EmbeddingStats.load('ref.npz', models.embedder.name)
  print(markdown_table(report(generated, reference, ('fad', 'kl'))))

Roles and their models (each records its name/version in the report):
  fad  embedder: musicnn (shipped; penultimate [200] per 3 s patch) or VGGish (a local torchvggish checkpoint;
       [128] per 0.96 s example, as Google's FAD, audiocraft and the MAGNeT paper). Each patch / example is one
       sample of the Gaussian.
  kl   classifier: musicnn's 50 MagnaTagATune tags, or AST's AudioSet classes (a local folder; audiocraft uses
       PaSST's). Each file's label distribution is the classifier's, averaged over its patches; KL(reference ||
       generated) is averaged over pairs of files with the same name in both sets, or when they share no names,
       it is the KL of their mean distributions.
  clap a CLAP model (a local folder): the mean cosine of each generated file's audio embedding and its text's.
       Texts come from the JSON sidecar beside each generated file (its 'prompt'), or a prompts file; a file
       without text is counted and left out of the score.

Files are read once per sample rate the models need, averaged to mono and resampled (soxr HQ).

Shapes: N clips, P patches, D embedding size, L labels.
"""
import dataclasses
import json
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import tqdm

from magnet_jax.audio import files as audio_files
from magnet_jax.audio.convert import convert
from magnet_jax.evaluation import musicnn, vggish
from magnet_jax.evaluation.metrics import EmbeddingStats, fad, kl_divergence
from magnet_jax.generation import records
from magnet_jax.generation.prompts import Prompt, expand
from magnet_jax.io.files import atomic_write

METRICS = ('fad', 'kl', 'clap')
AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aiff', '.aif')
EMBEDDERS = {'musicnn': musicnn.NAME, 'vggish': vggish.NAME}  # FAD embedder -> the name its statistics carry
CLASSIFIERS = ('musicnn', 'ast')


@dataclasses.dataclass
class Embedded:
  """What the models made of a set of clips."""
  names: list[str]                # one per clip that was read (file stems, or names given)
  embeddings: np.ndarray | None   # [P, D] float32 FAD embeddings of every clip's patches; None without an embedder
  label_probs: np.ndarray | None  # [len(names), L] per clip: the classifier's label distribution; None without one
  seconds: float                  # audio read
  embedder: str | None            # name/version of the FAD embedder
  classifier: str | None = None   # name/version of the classifier of `label_probs`
  skipped: list[str] = dataclasses.field(default_factory=list)  # 'path: why' for unreadable files
  clap: dict | None = None        # {'model', 'score', 'clips', 'without_text'}; None without a CLAP model

  def stats(self) -> EmbeddingStats:
    if self.embeddings is None:
      raise ValueError('no FAD embeddings: this set was measured without an embedder')
    return EmbeddingStats.from_embeddings(self.embeddings, self.embedder)

  def subset(self, names: Iterable[str]) -> 'Embedded':
    """The clips of `names` (embeddings are kept whole: per-clip patches are not tracked)."""
    keep = [self.names.index(n) for n in names]
    probs = None if self.label_probs is None else self.label_probs[keep]
    return dataclasses.replace(self, names=[self.names[i] for i in keep], label_probs=probs)


def _softmax_by_clip(logits: np.ndarray, owner: np.ndarray, clips: int) -> np.ndarray:
  """[P, L] patch logits, [P] clip index -> [clips, L]: per clip, the softmax averaged over its patches."""
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  return np.stack([probs[owner == i].mean(0) for i in range(clips)]) if clips else probs


class MusicnnEmbedder:
  """musicnn MTT (shipped): penultimate features [200] per 3 s patch for FAD, 50 MagnaTagATune tags for KL (one
  pass gives both, so one object serves as embedder and classifier)."""
  name = musicnn.NAME
  sample_rate = musicnn.SAMPLE_RATE
  labels = musicnn.MTT_LABELS

  def __init__(self, weights: str = musicnn.WEIGHTS, batch_size: int = 32, progress: bool = True):
    self.params = musicnn.load(weights)
    self.batch_size = batch_size
    self.progress = progress

  def embed(self, clips: Sequence[tuple[str, np.ndarray]], desc: str = 'embed') -> Embedded:
    """[(name, audio [N] float32 at 16 kHz)] -> Embedded (embeddings and tag distributions), in jitted batches of
    `batch_size` patches."""
    windows = [musicnn.patches(audio) for _, audio in clips]
    owner = np.concatenate([np.full(len(w), i) for i, w in enumerate(windows)]) if windows else np.zeros(0, int)
    flat = np.concatenate(windows) if windows else np.zeros((0, musicnn.PATCH_SAMPLES + musicnn.N_FFT), np.float32)
    features, logits = [], []
    bar = tqdm.tqdm(total=len(flat), desc=desc, unit='patch', disable=not self.progress)
    for start in range(0, len(flat), self.batch_size):
      batch = flat[start:start + self.batch_size]
      pad = self.batch_size - len(batch)  # one compiled shape: the last batch is padded
      f, g = jax.device_get(musicnn.embed_patches(self.params, np.pad(batch, ((0, pad), (0, 0)))))
      features.append(f[:len(batch)])
      logits.append(g[:len(batch)])
      bar.update(len(batch))
    bar.close()
    features = np.concatenate(features) if features else np.zeros((0, 200), np.float32)
    logits = np.concatenate(logits) if logits else np.zeros((0, len(self.labels)), np.float32)
    seconds = sum(len(audio) for _, audio in clips) / self.sample_rate
    return Embedded([name for name, _ in clips], features, _softmax_by_clip(logits, owner, len(clips)), seconds,
                    self.name, self.name)

  def label_probs(self, clips: Sequence[tuple[str, np.ndarray]]) -> np.ndarray:
    """[(name, audio at 16 kHz)] -> [N, 50] tag distributions (the classifier role)."""
    return self.embed(clips, desc='musicnn tags').label_probs


class VggishEmbedder:
  """VGGish from a local torchvggish checkpoint: [128] per 0.96 s example (before the last ReLU, as Google's FAD)."""
  name = vggish.NAME
  sample_rate = vggish.SAMPLE_RATE

  def __init__(self, checkpoint: str, batch_size: int = 32, progress: bool = True):
    self.params = vggish.load(checkpoint)
    self.batch_size = batch_size
    self.progress = progress

  def embed(self, clips: Sequence[tuple[str, np.ndarray]], desc: str = 'embed') -> Embedded:
    """[(name, audio [N] float32 at 16 kHz)] -> Embedded (embeddings only), in jitted batches of `batch_size`."""
    embeddings = vggish.embed(self.params, [audio for _, audio in clips], self.batch_size, desc, self.progress)
    seconds = sum(len(audio) for _, audio in clips) / self.sample_rate
    return Embedded([name for name, _ in clips], embeddings, None, seconds, self.name)


@dataclasses.dataclass(frozen=True)
class Models:
  """The loaded model of each role; None where a role is not played."""
  embedder: Any = None    # fad: .name, .sample_rate, .embed(clips, desc) -> Embedded
  classifier: Any = None  # kl: .name, .sample_rate, .label_probs(clips) -> [N, L]
  clap: Any = None        # clap: .name, .sample_rate, .score(clips, texts) -> float


@dataclasses.dataclass(frozen=True)
class ModelChoice:
  """Which model plays each role (None: not played) and the local files they load from; see `choose_models`."""
  embedder: str | None = 'musicnn'
  classifier: str | None = 'musicnn'
  vggish_checkpoint: str | None = None
  ast_folder: str | None = None
  clap_folder: str | None = None  # set: the CLAP role is played

  @property
  def embedder_name(self) -> str | None:
    """The name/version the embedder's statistics carry, known without loading it."""
    return None if self.embedder is None else EMBEDDERS[self.embedder]

  def load(self, batch_size: int = 32, progress: bool = True) -> Models:
    """Loads each role's model (musicnn once when it plays both FAD and KL)."""
    shared = {}
    def get_musicnn() -> MusicnnEmbedder:
      if 'musicnn' not in shared:
        shared['musicnn'] = MusicnnEmbedder(batch_size=batch_size, progress=progress)
      return shared['musicnn']
    embedder = classifier = clap = None
    if self.embedder == 'musicnn':
      embedder = get_musicnn()
    elif self.embedder == 'vggish':
      embedder = VggishEmbedder(self.vggish_checkpoint, batch_size, progress)
    if self.classifier == 'musicnn':
      classifier = get_musicnn()
    elif self.classifier == 'ast':
      from magnet_jax.evaluation.ast import AstClassifier  # its own branch: loaded only when asked for
      classifier = AstClassifier(self.ast_folder, progress=progress)
    if self.clap_folder is not None:
      from magnet_jax.evaluation.clap import ClapScorer
      clap = ClapScorer(self.clap_folder, progress=progress)
    return Models(embedder, classifier, clap)


def choose_models(metrics: Iterable[str], embedder: str = 'musicnn', classifier: str = 'musicnn',
                  vggish_checkpoint: str | None = None, ast_folder: str | None = None,
                  clap_folder: str | None = None, need_embedder: bool = False) -> ModelChoice:
  """The models `metrics` need (the embedder also with `need_embedder`, e.g. to save reference statistics), with
  their files checked, before anything loads.

  Raises:
    ValueError: an unknown metric or model, a file flag for a model not chosen, clap without a CLAP folder.
    FileNotFoundError / NotADirectoryError: a missing checkpoint or folder.
  """
  metrics = check_metrics(metrics)
  if embedder not in EMBEDDERS or classifier not in CLASSIFIERS:
    raise ValueError(f'unknown embedder {embedder!r} or classifier {classifier!r}: embedders '
                     f'{", ".join(EMBEDDERS)}; classifiers {", ".join(CLASSIFIERS)}')
  if vggish_checkpoint and embedder != 'vggish':
    raise ValueError(f'--vggish_checkpoint is given but the embedder is {embedder}: add --embedder vggish')
  if ast_folder and classifier != 'ast':
    raise ValueError(f'--ast_folder is given but the classifier is {classifier}: add --classifier ast')
  if clap_folder and 'clap' not in metrics:
    raise ValueError('--clap_folder is given but clap is not among the metrics')
  use_embedder = 'fad' in metrics or need_embedder
  if use_embedder and embedder == 'vggish' and not vggish_checkpoint:
    raise ValueError('--embedder vggish needs --vggish_checkpoint PATH (torchvggish\'s vggish-10086976.pth)')
  if use_embedder and vggish_checkpoint and not os.path.isfile(vggish_checkpoint):
    raise FileNotFoundError(f'VGGish checkpoint not found: {vggish_checkpoint}')
  if 'kl' in metrics and classifier == 'ast':
    _check_folder(ast_folder, '--classifier ast needs --ast_folder PATH (an AST audio classifier folder)', 'AST')
  if 'clap' in metrics:
    _check_folder(clap_folder, 'metric clap needs --clap_folder PATH (a CLAP model folder)', 'CLAP')
  return ModelChoice(embedder if use_embedder else None, classifier if 'kl' in metrics else None,
                     vggish_checkpoint, ast_folder, clap_folder if 'clap' in metrics else None)


def _check_folder(folder: str | None, missing: str, what: str) -> None:
  if not folder:
    raise ValueError(missing)
  if not os.path.isdir(folder):
    raise NotADirectoryError(f'{what} folder not found: {folder}')


def check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
  """Validated metric names.

  Raises:
    ValueError: an unknown metric, or none.
  """
  metrics = tuple(metrics)
  unknown = sorted(set(metrics) - set(METRICS))
  if unknown or not metrics:
    raise ValueError(f'unknown metric(s) {unknown or metrics}; choose among {", ".join(METRICS)}')
  return metrics


def list_audio(folder: str) -> list[str]:
  """The audio files directly in `folder`, sorted.

  Raises:
    NotADirectoryError: no such folder.
    ValueError: no audio file in it.
  """
  if not os.path.isdir(folder):
    raise NotADirectoryError(f'no such folder: {folder}')
  paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(AUDIO_EXTENSIONS))
  if not paths:
    raise ValueError(f'no audio files ({", ".join(AUDIO_EXTENSIONS)}) in {folder}')
  return paths


def stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def read_texts(paths: Sequence[str], prompts: Sequence[Prompt] = ()) -> dict[str, str]:
  """{file stem: text} of generated files: the 'prompt' of the JSON sidecar beside each (`generation.records`), or
  for files without one, the prompt of `prompts` (a prompts file) that `magnet-jax` names that stem (seed 0, one
  sample each). Files found in neither are left out (the CLAP score counts them as without text).

  Raises:
    ValueError: a sidecar that is not JSON.
  """
  by_stem = {r.stem: r.text for r in expand(list(prompts), 0, 1, None)} if prompts else {}
  texts = {}
  for path in paths:
    text = (records.read_sidecar(path) or {}).get('prompt')
    text = text if text is not None else by_stem.get(stem(path))
    if text:
      texts[stem(path)] = text
  return texts


def _read(paths: Sequence[str], names: Sequence[str], rate: int) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
  """([(name, mono audio at `rate`)] of the readable files, ['path: why'] of the others)."""
  clips, skipped = [], []
  for path, name in zip(paths, names, strict=True):
    try:
      audio, file_rate = audio_files.read(path)
      clips.append((name, convert(audio, file_rate, rate, 1)[0]))
    except (ValueError, RuntimeError) as e:  # unreadable, empty or non-finite audio
      skipped.append(f'{path}: {e}')
  return clips, skipped


def embed_files(models: Models, paths: Sequence[str], names: Sequence[str] | None = None,
                texts: Mapping[str, str] | None = None, desc: str = 'embed') -> Embedded:
  """Measures audio files with each role's model; unreadable files are skipped (and counted).

  Args:
    models: the roles' models (an embedder alone stands for Models(it), and for Models(it, it) if it classifies).
    paths: audio files.
    names: one per path (default: the file stems); KL pairs clips of two sets by name.
    texts: {name: text} for the CLAP score; clips without one are counted in clap['without_text'].

  Raises:
    ValueError: no model, no readable file, or a CLAP model with no clip that has a text.
  """
  if not isinstance(models, Models):
    models = Models(models, models if hasattr(models, 'label_probs') else None)
  names = [stem(p) for p in paths] if names is None else list(names)
  roles = [m for m in (models.embedder, models.classifier, models.clap) if m is not None]
  if not roles:
    raise ValueError('no model to measure with: give an embedder, a classifier or a CLAP model')
  result = None
  for rate in sorted({m.sample_rate for m in roles}):  # one rate's clips in memory at a time
    clips, skipped = _read(paths, names, rate)
    if not clips:
      raise ValueError(f'none of the {len(paths)} audio files could be read (first: {skipped[0]})')
    if result is None:
      result = Embedded([n for n, _ in clips], None, None, sum(len(a) for _, a in clips) / rate, None,
                        skipped=skipped)
    if models.embedder is not None and models.embedder.sample_rate == rate:
      embedded = models.embedder.embed(clips, desc=desc)
      result.embeddings, result.embedder = embedded.embeddings, embedded.embedder
      if models.classifier is models.embedder:  # one pass made both (musicnn)
        result.label_probs, result.classifier = embedded.label_probs, embedded.classifier
    if models.classifier is not None and models.classifier.sample_rate == rate and result.classifier is None:
      result.label_probs, result.classifier = np.asarray(models.classifier.label_probs(clips)), models.classifier.name
    if models.clap is not None and models.clap.sample_rate == rate:
      result.clap = _clap(models.clap, clips, texts or {})
  return result


def _clap(scorer, clips: Sequence[tuple[str, np.ndarray]], texts: Mapping[str, str]) -> dict:
  with_text = [(name, audio) for name, audio in clips if texts.get(name)]
  if not with_text:
    raise ValueError(f'the CLAP score needs texts, and none of the {len(clips)} files has one (a sidecar '
                     '"prompt" or a prompts file)')
  score = scorer.score(with_text, [texts[name] for name, _ in with_text])
  return {'model': scorer.name, 'score': float(score), 'clips': len(with_text),
          'without_text': len(clips) - len(with_text)}


def embed_folder(models: Models, folder: str, texts: Mapping[str, str] | None = None) -> Embedded:
  """`embed_files` of every audio file of `folder` (named by stem).

  Raises:
    NotADirectoryError / ValueError: no such folder, no audio file or no readable one in it.
  """
  paths = list_audio(folder)
  try:
    return embed_files(models, paths, texts=texts, desc=os.path.basename(os.path.normpath(folder)) or folder)
  except ValueError as e:
    raise ValueError(f'{folder}: {e}') from e


def tag_kl(generated: Embedded, reference: Embedded) -> tuple[float, str]:
  """(KL(reference || generated), 'paired' or 'sets'): averaged over same-named clips when any are shared."""
  shared = [n for n in generated.names if n in set(reference.names)]
  if shared:
    gen = generated.subset(shared).label_probs
    ref = reference.subset(shared).label_probs
    return float(np.mean(kl_divergence(ref, gen))), 'paired'
  return float(kl_divergence(reference.label_probs.mean(0), generated.label_probs.mean(0))), 'sets'


def report(generated: Embedded, reference: Embedded | EmbeddingStats | None, metrics: Sequence[str]) -> dict:
  """{'metrics': {name: value}, 'models': {name: model that measured it}, ...counts}: FAD against a set or cached
  statistics, KL against a set, CLAP of the generated set alone.

  Raises:
    ValueError: a metric whose model did not run, statistics of another embedder or a set of another
      classifier, KL asked of cached statistics (they hold no label distributions), FAD or KL without a reference.
  """
  metrics = check_metrics(metrics)
  if reference is None and {'fad', 'kl'} & set(metrics):
    raise ValueError('metrics fad and kl need a reference (a folder, or cached statistics for fad)')
  if 'kl' in metrics and isinstance(reference, EmbeddingStats):
    raise ValueError('metric kl needs a reference folder: cached statistics hold no label distributions')
  out = {'generated_clips': len(generated.names), 'generated_skipped': len(generated.skipped),
         'generated_seconds': round(generated.seconds, 2), 'models': {}, 'metrics': {}}
  if 'fad' in metrics:
    ref_stats = reference if isinstance(reference, EmbeddingStats) else reference.stats()
    if ref_stats.embedder != generated.embedder:
      raise ValueError(f'reference statistics were computed with embedder {ref_stats.embedder!r}, '
                       f'this run uses {generated.embedder!r}')
    out['reference_samples'] = ref_stats.count
    out['metrics']['fad'] = round(fad(generated.stats(), ref_stats), 4)
    out['models']['fad'] = generated.embedder
  if 'kl' in metrics:
    if generated.label_probs is None or reference.classifier != generated.classifier:
      raise ValueError(f'metric kl needs both sets classified by one model, got {generated.classifier!r} '
                       f'(generated) and {reference.classifier!r} (reference)')
    kl, out['kl_mode'] = tag_kl(generated, reference)
    out['metrics']['kl'] = round(kl, 4)
    out['models']['kl'] = generated.classifier
  if 'clap' in metrics:
    if generated.clap is None:
      raise ValueError('metric clap needs the generated set measured with a CLAP model')
    out['metrics']['clap'] = round(generated.clap['score'], 4)
    out['models']['clap'] = generated.clap['model']
    out['clap_clips'], out['clap_without_text'] = generated.clap['clips'], generated.clap['without_text']
  return out


def markdown_table(result: dict) -> str:
  """The report's metrics as a one-row Markdown table: the metrics, the counts, and the model of each metric."""
  cells = {name: f'{value:.4f}' for name, value in result['metrics'].items()}
  cells.update({'clips': str(result['generated_clips']), 'skipped': str(result['generated_skipped'])})
  role = {'fad': 'fad embedder', 'kl': 'kl classifier', 'clap': 'clap model'}
  cells.update({role[name]: model for name, model in result['models'].items()})
  return one_row_table(cells)


def one_row_table(cells: Mapping[str, str]) -> str:
  """{header: cell} -> a one-row Markdown table."""
  rows = [list(cells), ['---'] * len(cells), list(cells.values())]
  return '\n'.join('| ' + ' | '.join(row) + ' |' for row in rows)


def write_report(path: str, result: dict, table: str) -> None:
  """Writes the JSON report to `path` and its Markdown table beside it (.md), each atomically."""
  atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(json.dumps(result, indent=2) + '\n'))
  atomic_write(os.path.splitext(path)[0] + '.md', lambda tmp: pathlib.Path(tmp).write_text(table + '\n'))
