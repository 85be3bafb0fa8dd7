"""Quality of generated audio against references, one model per role (`evaluation/registry.py`): FAD, KAD and
FAD-inf (an embedder), KL (a classifier) and the CLAP score (a text-audio scorer), each with a bootstrap interval.

  models = choose_models(('fad', 'kad', 'kl'), embedder='vggish', vggish_checkpoint='vggish-10086976.pth').load()
  generated = embed_folder(models, 'outputs/', texts=read_texts(list_audio('outputs/')))
  reference = embed_folder(models, 'references/')      # or EmbeddingStats.load('ref.npz', ...) for FAD alone
  print(markdown_table(report(generated, reference, ('fad', 'kad', 'kl'), draws=1000)))

Metrics (each records the name/version of the model that measured it):
  fad      Fréchet distance of Gaussians fitted to the embeddings of both sets (each patch / example one sample).
  kad      kernel audio distance: unbiased MMD with a Gaussian kernel (kadtk's bandwidth and scale).
  fad_inf  fadtk's extrapolation of FAD to infinitely many embeddings.
  kl       KL(reference || generated) of the classifier's label distributions, averaged over pairs of files with
           the same name in both sets, or, when they share no names, the KL of their mean distributions.
  clap     the mean cosine of each generated file's audio embedding and its text's; texts come from the JSON
           sidecar beside each generated file (its 'prompt'), or a prompts file; a file without one is counted and
           left out.
With FAD, the clips with the largest per-clip FAD are listed (fadtk's --indiv). Intervals: `evaluation/bootstrap.py`.

Files are read once per sample rate the models need, averaged to mono and resampled (soxr HQ).

Shapes: N clips, P patches, D embedding size, L labels.
"""
import dataclasses
import json
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from magnet_jax.audio import files as audio_files
from magnet_jax.audio.convert import convert
from magnet_jax.evaluation import bootstrap, registry
from magnet_jax.evaluation import metrics as metrics_module
from magnet_jax.evaluation.metrics import EmbeddingStats, fad, kl_divergence
from magnet_jax.generation import records
from magnet_jax.generation.prompts import Prompt, expand
from magnet_jax.io.files import atomic_write

METRICS = tuple(registry.METRIC_ROLES)  # fad, kad, fad_inf, kl, clap
AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aiff', '.aif')
WORST_CLIPS = 10  # clips listed by per-clip FAD


@dataclasses.dataclass
class Embedded:
  """What the models made of a set of clips."""
  names: list[str]                # one per clip that was read (file stems, or names given)
  embeddings: np.ndarray | None   # [P, D] float32 embeddings of every clip's patches; None without an embedder
  label_probs: np.ndarray | None  # [len(names), L] per clip: the classifier's label distribution; None without one
  seconds: float                  # audio read
  embedder: str | None            # name/version of the embedder
  classifier: str | None = None   # name/version of the classifier of `label_probs`
  skipped: list[str] = dataclasses.field(default_factory=list)  # 'path: why' for unreadable files
  clap: dict | None = None        # {'model', 'score', 'clips', 'without_text'}; None without a scorer
  owner: np.ndarray | None = None  # [P] int: the clip (index into names) of each embedding row
  clap_similarities: np.ndarray | None = None  # [len(names)] cosine of each clip and its text (NaN: no text)

  def stats(self) -> EmbeddingStats:
    if self.embeddings is None:
      raise ValueError('no embeddings: this set was measured without an embedder')
    return EmbeddingStats.from_embeddings(self.embeddings, self.embedder)

  def subset(self, names: Iterable[str]) -> 'Embedded':
    """The clips of `names`, with their embeddings and label distributions (CLAP results are dropped)."""
    keep = [self.names.index(n) for n in names]
    probs = None if self.label_probs is None else self.label_probs[keep]
    embeddings = owner = None
    if self.embeddings is not None:
      rows = [np.flatnonzero(self.owner == i) for i in keep]
      embeddings = self.embeddings[np.concatenate(rows)]
      owner = np.concatenate([np.full(len(r), j) for j, r in enumerate(rows)])
    return dataclasses.replace(self, names=[self.names[i] for i in keep], label_probs=probs, embeddings=embeddings,
                               owner=owner, clap=None, clap_similarities=None)

  def clip_embeddings(self) -> list[tuple[str, np.ndarray]]:
    """[(name, [P_i, D] embeddings of that clip)]."""
    return [(name, self.embeddings[self.owner == i]) for i, name in enumerate(self.names)]


@dataclasses.dataclass(frozen=True)
class Models:
  """The loaded model of each role (`registry`'s Protocols); None where a role is not played."""
  embedder: Any = None    # registry.Embedder
  classifier: Any = None  # registry.Classifier
  scorer: Any = None      # registry.Scorer


@dataclasses.dataclass(frozen=True)
class ModelChoice:
  """Which registered model plays each role (None: not played) and the file options they load from."""
  embedder: str | None = 'musicnn'
  classifier: str | None = 'musicnn'
  scorer: str | None = None
  options: Mapping[str, str | None] = dataclasses.field(default_factory=dict)  # {flag: path}
  metrics: tuple[str, ...] = ('fad', 'kl')  # what they were chosen for

  @property
  def embedder_name(self) -> str | None:
    """The name/version the embedder's statistics carry, known without loading it."""
    if self.embedder is None:
      return None
    spec = registry.get(self.embedder)
    return spec.stats_name(self.options.get(spec.option.flag) if spec.option else None)

  def load(self, batch_size: int = 32, progress: bool = True) -> Models:
    """Loads each role's model, once when one model plays two roles."""
    loaded = {}
    for name in {self.embedder, self.classifier, self.scorer} - {None}:
      spec = registry.get(name)
      loaded[name] = spec.load(self.options.get(spec.option.flag) if spec.option else None, batch_size=batch_size,
                               progress=progress)
    return Models(*(loaded.get(name) for name in (self.embedder, self.classifier, self.scorer)))


def choose_models(metrics: Iterable[str], embedder: str = registry.DEFAULTS['embedder'],
                  classifier: str = registry.DEFAULTS['classifier'], scorer: str = registry.DEFAULTS['scorer'],
                  need_embedder: bool = False, **options: str | None) -> ModelChoice:
  """The models `metrics` need (the embedder also with `need_embedder`, e.g. to save reference statistics), with
  their files checked, before anything loads.

  Args:
    metrics: among METRICS.
    embedder, classifier, scorer: registered model names (`registry.names(role)`).
    need_embedder: load the embedder even when no metric needs it.
    **options: each model's file option by flag name (vggish_checkpoint=..., ast_folder=..., clap_folder=...).

  Raises:
    ValueError: an unknown metric, model or option, a file option for a model not chosen, a model without its file.
    FileNotFoundError / NotADirectoryError: a missing checkpoint or folder.
  """
  metrics = check_metrics(metrics)
  chosen = {'embedder': embedder, 'classifier': classifier, 'scorer': scorer}
  specs = {role: registry.get(name, role) for role, name in chosen.items()}
  played = {registry.METRIC_ROLES[m] for m in metrics} | ({'embedder'} if need_embedder else set())
  known = registry.options()
  for flag, path in options.items():
    if flag not in known:
      raise ValueError(f'unknown model option {flag!r}; options: {", ".join(known)}')
    owners = [(role, spec) for role, spec in specs.items() if spec.option is not None and spec.option.flag == flag]
    if path and not owners:
      model = next(s for s in registry.specs().values() if s.option is not None and s.option.flag == flag)
      role = next(r for r in model.roles)
      raise ValueError(f'{known[flag].cli} is given but the {role} is {chosen[role]}: add --{role} {model.name}')
    if path and not any(role in played for role, _ in owners):
      raise ValueError(f'{known[flag].cli} is given but no metric needs {owners[0][1].name} '
                       f'(metrics: {", ".join(metrics)})')
  for role in played:
    specs[role].check(options.get(specs[role].option.flag) if specs[role].option else None)
  return ModelChoice(*(chosen[role] if role in played else None for role in registry.ROLES),
                     options={flag: path for flag, path in options.items() if path}, metrics=metrics)


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


def embed_clips(models: Models, clips: Sequence[tuple[str, np.ndarray]], rate: int, result: Embedded,
                texts: Mapping[str, str] | None = None, desc: str = 'embed') -> Embedded:
  """Fills `result` with what the models that take audio at `rate` make of `clips` [(name, audio at rate)]."""
  embedder, classifier, scorer = models.embedder, models.classifier, models.scorer
  if embedder is not None and embedder.sample_rate == rate:
    if classifier is embedder and hasattr(embedder, 'embed_and_classify'):  # one pass makes both (musicnn)
      per_clip, result.label_probs = embedder.embed_and_classify(clips, desc)
      result.classifier = classifier.name
    else:
      per_clip = embedder.embed(clips, desc)
    result.embedder = embedder.name
    result.embeddings = np.concatenate(per_clip)
    result.owner = np.concatenate([np.full(len(x), i) for i, x in enumerate(per_clip)])
  if classifier is not None and classifier.sample_rate == rate and result.classifier is None:
    result.label_probs, result.classifier = np.asarray(classifier.label_probs(clips, desc)), classifier.name
  if scorer is not None and scorer.sample_rate == rate:
    _score_texts(scorer, clips, texts or {}, result)
  return result


def embed_files(models: Models, paths: Sequence[str], names: Sequence[str] | None = None,
                texts: Mapping[str, str] | None = None, desc: str = 'embed') -> Embedded:
  """Measures audio files with each role's model; unreadable files are skipped (and counted).

  Args:
    models: the roles' models (an embedder alone stands for Models(it), and for Models(it, it) if it classifies).
    paths: audio files.
    names: one per path (default: the file stems); KL pairs clips of two sets by name.
    texts: {name: text} for the CLAP score; clips without one are counted in clap['without_text'].

  Raises:
    ValueError: no model, no readable file, or a scorer with no clip that has a text.
  """
  if not isinstance(models, Models):
    models = Models(models, models if isinstance(models, registry.Classifier) else None)
  names = [stem(p) for p in paths] if names is None else list(names)
  roles = [m for m in (models.embedder, models.classifier, models.scorer) if m is not None]
  if not roles:
    raise ValueError('no model to measure with: give an embedder, a classifier or a scorer')
  result = None
  for rate in sorted({m.sample_rate for m in roles}):  # one rate's clips in memory at a time
    clips, skipped = _read(paths, names, rate)
    if not clips:
      raise ValueError(f'none of the {len(paths)} audio files could be read (first: {skipped[0]})')
    if result is None:
      result = Embedded([n for n, _ in clips], None, None, sum(len(a) for _, a in clips) / rate, None,
                        skipped=skipped)
    embed_clips(models, clips, rate, result, texts, desc)
  return result


def _score_texts(scorer, clips: Sequence[tuple[str, np.ndarray]], texts: Mapping[str, str], result: Embedded) -> None:
  with_text = [i for i, (name, _) in enumerate(clips) if texts.get(name)]
  if not with_text:
    raise ValueError(f'the CLAP score needs texts, and none of the {len(clips)} files has one (a sidecar '
                     '"prompt" or a prompts file)')
  similarities = np.asarray(scorer.similarities([clips[i] for i in with_text], [texts[clips[i][0]] for i in with_text]))
  result.clap_similarities = np.full(len(clips), np.nan)
  result.clap_similarities[with_text] = similarities
  result.clap = {'model': scorer.name, 'score': float(np.mean(similarities)), 'clips': len(with_text),
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


def per_clip_kl(generated: Embedded, reference: Embedded) -> tuple[np.ndarray, str]:
  """([N] KL(reference || generated) of each generated clip against the reference clip of its name, NaN where the
  reference has none; 'paired'), or (None, 'sets') when the sets share no name."""
  if generated.label_probs is None or reference.label_probs is None:
    raise ValueError('KL needs both sets measured with a classifier')
  index = {n: i for i, n in enumerate(reference.names)}
  shared = [i for i, n in enumerate(generated.names) if n in index]
  if not shared:
    return None, 'sets'
  values = np.full(len(generated.names), np.nan)
  ref = reference.label_probs[[index[generated.names[i]] for i in shared]]
  values[shared] = kl_divergence(ref, generated.label_probs[shared])
  return values, 'paired'


def tag_kl(generated: Embedded, reference: Embedded) -> tuple[float, str]:
  """(KL(reference || generated), 'paired' or 'sets'): averaged over same-named clips when any are shared."""
  value = clip_statistic('kl', generated, reference)(np.ones(len(generated.names), np.int64))
  return value, per_clip_kl(generated, reference)[1]


def clip_statistic(metric: str, generated: Embedded, reference: 'Embedded | EmbeddingStats',
                   seed: int = 0) -> bootstrap.Statistic:
  """`metric` of the generated set as a function of how often each of its clips is drawn (`bootstrap`); counts of
  ones give the metric of the set itself. `seed`: FAD-inf's subset draws (`report`'s seed).

  Raises:
    ValueError: a metric its measurements cannot give (no embeddings, no label distributions, no CLAP similarities),
      KAD or KL against cached statistics.
  """
  if metric in ('fad', 'kad', 'fad_inf') and (generated.embeddings is None or generated.owner is None):
    raise ValueError(f'metric {metric} needs the generated set embedded clip by clip')
  if metric == 'fad':
    ref_stats = reference if isinstance(reference, EmbeddingStats) else reference.stats()
    return metrics_module.fad_of_counts(generated.embeddings, generated.owner, ref_stats)
  if metric == 'fad_inf':
    ref_stats = reference if isinstance(reference, EmbeddingStats) else reference.stats()
    return metrics_module.fad_inf_of_counts(generated.embeddings, generated.owner, ref_stats, seed)
  if metric in ('kad', 'kl') and not isinstance(reference, Embedded):
    raise ValueError(f'metric {metric} needs a reference folder: cached statistics hold only FAD\'s Gaussian')
  if metric == 'kad':
    return metrics_module.kad_of_counts(generated.embeddings, generated.owner, reference.embeddings)
  if metric == 'kl':
    values, _ = per_clip_kl(generated, reference)
    if values is not None:
      return metrics_module.mean_of_counts(values)
    target = reference.label_probs.mean(0)
    return lambda counts: float(kl_divergence(target, counts @ generated.label_probs / counts.sum()))
  if metric == 'clap':
    if generated.clap_similarities is None:
      raise ValueError('metric clap needs the generated set measured with a CLAP model')
    return metrics_module.mean_of_counts(generated.clap_similarities)
  raise ValueError(f'no per-clip statistic for metric {metric!r}')


# A FAD-inf draw fits 25 subsets (25 FADs): its intervals take at most this many draws (their `draws` says how many).
FAD_INF_DRAWS = 200


def metric_draws(metric: str, draws: int) -> int:
  return min(draws, FAD_INF_DRAWS) if metric == 'fad_inf' else draws


def intervals(generated: Embedded, reference, names: Sequence[str], draws: int = bootstrap.DRAWS, seed: int = 0,
              level: float = bootstrap.LEVEL) -> dict[str, bootstrap.Interval]:
  """{metric: its bootstrap interval} over resamplings of the generated clips (the reference held fixed)."""
  n = len(generated.names)
  return {m: bootstrap.interval(clip_statistic(m, generated, reference, seed), n, metric_draws(m, draws), seed, level)
          for m in names}


def compare(a: Embedded, b: Embedded, reference, names: Sequence[str], draws: int = bootstrap.DRAWS, seed: int = 0,
            level: float = bootstrap.LEVEL) -> dict[str, bootstrap.Comparison]:
  """{metric: metric(a) - metric(b)} with paired bootstrap intervals and p-values: a and b are two settings'
  generations of the same prompts with the same seeds, clip i of each named alike.

  Raises:
    ValueError: the sets do not hold the same clip names in the same order.
  """
  if a.names != b.names:
    raise ValueError(f'a paired comparison needs the same clips in the same order (the same prompts and seeds), got '
                     f'{len(a.names)} and {len(b.names)} clips named differently')
  n = len(a.names)
  return {m: bootstrap.compare(clip_statistic(m, a, reference, seed), clip_statistic(m, b, reference, seed), n,
                               metric_draws(m, draws), seed, level) for m in names}


def report(generated: Embedded, reference: Embedded | EmbeddingStats | None, metrics: Sequence[str],
           draws: int = 0, seed: int = 0, level: float = bootstrap.LEVEL) -> dict:
  """{'metrics': {name: value}, 'models': {name: model that measured it}, 'intervals': {name: bootstrap interval}
  (with draws > 0), ...counts}: FAD and FAD-inf against a set or cached statistics, KAD and KL against a set, CLAP
  of the generated set alone; with FAD, the clips of largest per-clip FAD ('fad_worst_clips').

  Raises:
    ValueError: a metric whose model did not run, a reference of another embedder or classifier, KAD or KL asked of
      cached statistics, a metric that needs a reference without one, bad bootstrap settings.
  """
  metrics = check_metrics(metrics)
  if draws:
    bootstrap.check(draws, level)
  if reference is None and set(metrics) - {'clap'}:
    raise ValueError(f'metrics {", ".join(m for m in metrics if m != "clap")} need a reference (a folder, or cached '
                     'statistics for fad and fad_inf)')
  if isinstance(reference, EmbeddingStats) and {'kad', 'kl'} & set(metrics):
    raise ValueError('metrics kad and kl need a reference folder: cached statistics hold only FAD\'s Gaussian')
  out = {'generated_clips': len(generated.names), 'generated_skipped': len(generated.skipped),
         'generated_seconds': round(generated.seconds, 2), 'models': {}, 'metrics': {}}
  if {'fad', 'kad', 'fad_inf'} & set(metrics):
    if generated.embeddings is None or reference.embedder != generated.embedder:
      raise ValueError(f'the reference was embedded with {reference.embedder!r}, this run uses '
                       f'{generated.embedder!r}')
    ref_stats = reference if isinstance(reference, EmbeddingStats) else reference.stats()
    out['reference_samples'] = ref_stats.count
  if 'fad' in metrics:
    out['metrics']['fad'] = round(fad(generated.stats(), ref_stats), 4)
    worst = [c for c in generated.clip_embeddings() if len(c[1]) >= 2]
    out['fad_worst_clips'] = [{'clip': name, 'fad': round(value, 4)} for name, value in
                              metrics_module.fad_per_clip(worst, ref_stats)[:WORST_CLIPS]] if worst else []
  if 'kad' in metrics:
    out['metrics']['kad'] = round(metrics_module.kernel_audio_distance(generated.embeddings, reference.embeddings), 4)
  if 'fad_inf' in metrics and len(generated.embeddings) < 4:  # after an hour of generation, say so, do not fail
    out['fad_inf_fit'] = {'skipped': f'FAD-inf needs at least 4 embeddings, the set has {len(generated.embeddings)}'}
  elif 'fad_inf' in metrics:
    fit = metrics_module.fad_inf(generated.embeddings, ref_stats, seed=seed)
    out['metrics']['fad_inf'] = round(fit.value, 4)
    out['fad_inf_fit'] = {'slope': round(fit.slope, 4), 'r2': round(fit.r2, 4), 'subsets': len(fit.points),
                          'n': [fit.points[0][0], fit.points[-1][0]], 'seed': seed}
  if 'kl' in metrics:
    if generated.label_probs is None or reference.classifier != generated.classifier:
      raise ValueError(f'metric kl needs both sets classified by one model, got {generated.classifier!r} '
                       f'(generated) and {reference.classifier!r} (reference)')
    kl, out['kl_mode'] = tag_kl(generated, reference)
    out['metrics']['kl'] = round(kl, 4)
  if 'clap' in metrics:
    if generated.clap is None:
      raise ValueError('metric clap needs the generated set measured with a scorer (a CLAP model)')
    out['metrics']['clap'] = round(generated.clap['score'], 4)
    out['clap_clips'], out['clap_without_text'] = generated.clap['clips'], generated.clap['without_text']
  model_of = {'embedder': generated.embedder, 'classifier': generated.classifier,
              'scorer': generated.clap and generated.clap['model']}
  out['models'] = {m: model_of[registry.METRIC_ROLES[m]] for m in out['metrics']}
  if draws:
    out['intervals'] = {m: i.as_dict() for m, i in intervals(generated, reference, list(out['metrics']), draws, seed,
                                                              level).items()}
  return out


def cell(result: dict, metric: str) -> str:
  """A metric's Markdown cell: 'value [low, high]' with an interval, 'value (R^2 r)' for FAD-inf without one."""
  value = result['metrics'][metric]
  found = result.get('intervals', {}).get(metric)
  if found:
    return f'{value:.4g} [{found["low"]:.4g}, {found["high"]:.4g}]'
  if metric == 'fad_inf':
    return f'{value:.4g} (R² {result["fad_inf_fit"]["r2"]:.3f})'
  return f'{value:.4f}'


def markdown_table(result: dict) -> str:
  """The report's metrics as a one-row Markdown table (each with its interval), the counts and each metric's model,
  then the clips of largest per-clip FAD."""
  cells = {name: cell(result, name) for name in result['metrics']}
  cells.update({'clips': str(result['generated_clips']), 'skipped': str(result['generated_skipped'])})
  cells.update({f'{name} model': model for name, model in result['models'].items()})
  lines = [one_row_table(cells)]
  if 'intervals' in result:
    first = next(iter(result['intervals'].values()))
    fewer = {m: i['draws'] for m, i in result['intervals'].items() if i['draws'] != first['draws']}
    also = ''.join(f', {m} {draws}' for m, draws in fewer.items())
    lines.append(f'\n[low, high]: {first["level"]:.0%} bootstrap intervals, {first["draws"]} draws of the generated '
                 f'clips{also} (seed {first["seed"]}; magnet_jax/evaluation/bootstrap.py).')
  if result.get('fad_worst_clips'):
    worst = ', '.join(f'{c["clip"]} ({c["fad"]:.4g})' for c in result['fad_worst_clips'])
    lines.append(f'\nLargest per-clip FAD: {worst}.')
  return '\n'.join(lines)


def one_row_table(cells: Mapping[str, str]) -> str:
  """{header: cell} -> a one-row Markdown table."""
  rows = [list(cells), ['---'] * len(cells), list(cells.values())]
  return '\n'.join('| ' + ' | '.join(row) + ' |' for row in rows)


def write_report(path: str, result: dict, table: str) -> None:
  """Writes the JSON report to `path` and its Markdown table beside it (.md), each atomically."""
  atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(json.dumps(result, indent=2) + '\n'))
  atomic_write(os.path.splitext(path)[0] + '.md', lambda tmp: pathlib.Path(tmp).write_text(table + '\n'))
