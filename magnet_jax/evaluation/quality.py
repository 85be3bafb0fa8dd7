"""Quality of generated audio against references: embed folders (or clips in memory), then FAD and tag-KL.

  embedder = MusicnnEmbedder()
  generated = embed_folder(embedder, 'outputs/')
  reference = embed_folder(embedder, 'references/')      # or EmbeddingStats.load('ref.npz', embedder.name)
  print(markdown_table(report(generated, reference, ('fad', 'kl'))))

FAD is computed over per-patch embeddings (each 3 s musicnn patch is one sample of the Gaussian, as each 0.96 s
VGGish frame is in Google's FAD). Tag-KL is audiocraft's: each file's label distribution is the softmax of the
classifier's logits averaged over its patches, and KL(reference || generated) is averaged over pairs of files with
the same name (stem) in both sets; when the sets share no names, the KL of their mean distributions is reported.

Shapes: N samples, P patches, D embedding size, L labels.
"""
import dataclasses
import os
from collections.abc import Iterable, Sequence

import jax
import numpy as np
import tqdm

from magnet_jax.audio import files as audio_files
from magnet_jax.audio.convert import convert
from magnet_jax.evaluation import musicnn
from magnet_jax.evaluation.metrics import EmbeddingStats, fad, kl_divergence

METRICS = ('fad', 'kl', 'clap')
AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aiff', '.aif')


@dataclasses.dataclass
class Embedded:
  """The embeddings of a set of clips."""
  names: list[str]            # one per clip that was read (file stems)
  embeddings: np.ndarray      # [P, D] float32, every clip's patches
  label_probs: np.ndarray     # [len(names), L] per clip: softmax of the logits averaged over its patches
  seconds: float              # audio embedded
  embedder: str               # name/version of the embedder
  skipped: list[str] = dataclasses.field(default_factory=list)  # 'path: why' for unreadable files

  def stats(self) -> EmbeddingStats:
    return EmbeddingStats.from_embeddings(self.embeddings, self.embedder)

  def subset(self, names: Iterable[str]) -> 'Embedded':
    """The clips of `names` (embeddings are kept whole: per-clip patches are not tracked)."""
    keep = [self.names.index(n) for n in names]
    return dataclasses.replace(self, names=[self.names[i] for i in keep], label_probs=self.label_probs[keep])


class MusicnnEmbedder:
  """musicnn MTT: penultimate features [200] per 3 s patch for FAD, 50 MagnaTagATune tags for KL."""
  name = musicnn.NAME
  sample_rate = musicnn.SAMPLE_RATE
  labels = musicnn.MTT_LABELS

  def __init__(self, weights: str = musicnn.WEIGHTS, batch_size: int = 32, progress: bool = True):
    self.params = musicnn.load(weights)
    self.batch_size = batch_size
    self.progress = progress

  def embed(self, clips: Sequence[tuple[str, np.ndarray]], desc: str = 'embed') -> Embedded:
    """[(name, audio [N] float32 at 16 kHz)] -> Embedded, in jitted batches of `batch_size` patches."""
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
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    label_probs = np.stack([probs[owner == i].mean(0) for i in range(len(clips))]) if clips else probs
    seconds = sum(len(audio) for _, audio in clips) / self.sample_rate
    return Embedded([name for name, _ in clips], features, label_probs, seconds, self.name)


EMBEDDERS = {'musicnn': MusicnnEmbedder}


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


def embed_folder(embedder, folder: str) -> Embedded:
  """Embeds every audio file of `folder` (mono, resampled to the embedder's rate); unreadable files are skipped.

  Raises:
    ValueError: an empty folder, or no readable file in it.
  """
  clips, skipped = [], []
  for path in list_audio(folder):
    try:
      audio, rate = audio_files.read(path)
      clips.append((os.path.splitext(os.path.basename(path))[0], convert(audio, rate, embedder.sample_rate, 1)[0]))
    except (ValueError, RuntimeError) as e:  # unreadable, empty or non-finite audio
      skipped.append(f'{path}: {e}')
  if not clips:
    raise ValueError(f'none of the {len(skipped)} audio files in {folder} could be read (first: {skipped[0]})')
  embedded = embedder.embed(clips, desc=os.path.basename(os.path.normpath(folder)) or folder)
  embedded.skipped = skipped
  return embedded


def check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
  """Validated metric names.

  Raises:
    ValueError: an unknown metric, or one this build cannot compute.
  """
  metrics = tuple(metrics)
  unknown = sorted(set(metrics) - set(METRICS))
  if unknown or not metrics:
    raise ValueError(f'unknown metric(s) {unknown or metrics}; choose among {", ".join(METRICS)}')
  if 'clap' in metrics:
    raise ValueError('metric clap needs a CLAP embedder, which magnet-jax does not have yet '
                     '(magnet_jax.evaluation.metrics.clap_score scores given embeddings)')
  return metrics


def tag_kl(generated: Embedded, reference: Embedded) -> tuple[float, str]:
  """(KL(reference || generated), 'paired' or 'sets'): averaged over same-named clips when any are shared."""
  shared = [n for n in generated.names if n in set(reference.names)]
  if shared:
    gen = generated.subset(shared).label_probs
    ref = reference.subset(shared).label_probs
    return float(np.mean(kl_divergence(ref, gen))), 'paired'
  return float(kl_divergence(reference.label_probs.mean(0), generated.label_probs.mean(0))), 'sets'


def report(generated: Embedded, reference: Embedded | EmbeddingStats, metrics: Sequence[str]) -> dict:
  """{'metrics': {name: value}, ...counts}: FAD against a set or cached statistics, KL against a set.

  Raises:
    ValueError: statistics of another embedder, or KL asked of cached statistics (they hold no label
      distributions).
  """
  metrics = check_metrics(metrics)
  ref_stats = reference if isinstance(reference, EmbeddingStats) else reference.stats()
  if ref_stats.embedder != generated.embedder:
    raise ValueError(f'reference statistics were computed with embedder {ref_stats.embedder!r}, '
                     f'this run uses {generated.embedder!r}')
  out = {'embedder': generated.embedder, 'generated_clips': len(generated.names),
         'generated_skipped': len(generated.skipped), 'generated_seconds': round(generated.seconds, 2),
         'reference_samples': ref_stats.count, 'metrics': {}}
  if 'fad' in metrics:
    out['metrics']['fad'] = round(fad(generated.stats(), ref_stats), 4)
  if 'kl' in metrics:
    if isinstance(reference, EmbeddingStats):
      raise ValueError('metric kl needs a reference folder: cached statistics hold no label distributions')
    out['metrics']['kl'], out['kl_mode'] = tag_kl(generated, reference)
    out['metrics']['kl'] = round(out['metrics']['kl'], 4)
  return out


def markdown_table(result: dict) -> str:
  """The report's metrics as a one-row Markdown table."""
  columns = list(result['metrics']) + ['clips', 'skipped']
  values = [f'{v:.4f}' for v in result['metrics'].values()] + [str(result['generated_clips']),
                                                               str(result['generated_skipped'])]
  return '\n'.join(['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns), '| ' + ' | '.join(values) + ' |'])
