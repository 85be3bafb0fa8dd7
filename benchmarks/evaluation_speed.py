"""How fast the evaluation itself runs: seconds of audio embedded per second of wall time by each evaluation model
at its real size (random weights: nothing is downloaded), in JAX and in its original on the same weights and clips.

  nice python -m benchmarks.evaluation_speed --out benchmarks/results/evaluation_speed.json   # ~10 min on 2 cores
  python -m benchmarks.evaluation_speed --quick --models musicnn,vggish --nomusicnn-tf --out /tmp/speed.json

Models (`--models`), each timed through the call the evaluation makes, on `--clips` clips of `--seconds` of noise:
  musicnn  the shipped weights, `models.musicnn.MusicnnModel.embed` (batches of 32 3 s patches); original: musicnn's
           TensorFlow `extractor.extractor` on the same clips as 16 kHz WAV files, one call per file as it is used
           (each call builds its graph and restores the checkpoint), in its own process (`--musicnn-tf`).
  vggish   torchvggish's VGG (72M) with random weights saved by torch.save (`reference/evaluation_models.py`),
           `models.vggish.VggishModel.embed` (batches of 32 0.96 s examples); original: reference/vggish.py's VGG on
           the same state dict, fed our front end's examples (the jitted log-mel, timed with it).
  ast      the size of MIT/ast-finetuned-audioset-10-10-0.4593 (transformers' ASTConfig defaults: 768 hidden, 12
           layers, 1024 frames, 128 mel bins, strides 10; 527 labels), saved with save_pretrained,
           `ast_classifier.AstClassifier.label_probs` (batches of 8 10.24 s segments); original: transformers'
           ASTFeatureExtractor + ASTForAudioClassification, softmax of the logits, batches of 8.
  clap     the size of laion/larger_clap_music: HTSAT-base audio encoder (patch_embeds_hidden_size 128, depths
           [2, 2, 12, 2], heads [4, 8, 16, 32], hidden 1024, window 8, 256 x 256 image of 64 mel bands;
           transformers' ClapAudioConfig defaults are HTSAT-tiny: 96, [2, 2, 6, 2], 768), a RoBERTa-base text
           encoder, projection 512, enable_fusion False; 48 kHz clips, `clap.ClapScorer.embed_audio` (batches of
           8); original: transformers' ClapFeatureExtractor (rand_trunc, repeatpad) + ClapModel.get_audio_features.
           The tokenizer is the small one of reference/evaluation_models.py (only audio is timed).

Each system makes one warm-up call on all the clips, then `--repeats` timed calls (their median is reported).
JAX's compile time is what jax.monitoring reports of tracing, lowering and XLA compilation during the warm-up (not
first call - warm call, which load from other processes blurs); the originals' first-call overhead is first call -
warm median. PyTorch uses all the cores this process may use, with
OMP_WAIT_POLICY=PASSIVE (as benchmarks/latency). Writes the JSON to --out and the Markdown table beside it (.md),
both atomically, after every model; prints the table.
"""
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # before torch is imported: its threads sleep, not spin

import jax  # noqa: E402
import numpy as np  # noqa: E402
import tqdm  # noqa: E402
from absl import flags, logging  # noqa: E402

from benchmarks.latency.measure import cpu_name, version  # noqa: E402
from magnet_jax.apps import runner  # noqa: E402
from magnet_jax.evaluation import musicnn, registry, vggish  # noqa: E402
from magnet_jax.io.files import atomic_write  # noqa: E402

MODELS = ('musicnn', 'vggish', 'ast', 'clap')
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW_KEYS = ('model', 'size', 'params_m', 'clips', 'clip_s', 'jax_load_s', 'jax_compile_s', 'jax_s', 'jax_rate',
            'original', 'original_params_m', 'original_compile_s', 'original_s', 'original_rate', 'ratio')
SIZES = {'musicnn': 'MTT_musicnn (shipped weights)', 'vggish': 'torchvggish VGG',
         'ast': 'ast-finetuned-audioset-10-10 (768 x 12, 1024 frames)',
         'clap': 'larger_clap_music audio (HTSAT-base 128, [2, 2, 12, 2])'}

FLAGS = flags.FLAGS
flags.DEFINE_list('models', list(MODELS), f'evaluation models to time, among {", ".join(MODELS)}')
flags.DEFINE_integer('clips', 8, 'clips per embed call', lower_bound=1)
flags.DEFINE_float('seconds', 10.0, 'length of each clip in seconds', lower_bound=0.1)
flags.DEFINE_integer('repeats', 2, 'timed calls after the warm-up call (the median is reported)', lower_bound=1)
flags.DEFINE_bool('quick', False, 'smoke run: 2 clips of 2 s, one timed call')
flags.DEFINE_bool('originals', True, 'also time the PyTorch / TensorFlow originals')
flags.DEFINE_bool('musicnn-tf', True, "time musicnn's TensorFlow original (its own process; skipped if it fails)")
flags.DEFINE_integer('musicnn-tf-timeout-s', 600, "limit of the musicnn original's process", lower_bound=1)
flags.DEFINE_string('out', 'benchmarks/results/evaluation_speed.json', 'JSON output (the Markdown goes beside it)')
flags.register_validator('models', lambda names: bool(names) and set(names) <= set(MODELS),
                         f'--models must be a non-empty list among {", ".join(MODELS)}')


@dataclasses.dataclass
class Timing:
  """Wall-clock seconds of the warm-up call and of the timed calls."""
  first_s: float
  runs: list[float]
  jax_compile_s: float = 0.0  # JAX's tracing, lowering and compilation during these calls (jax.monitoring)

  @property
  def warm_s(self) -> float:
    return statistics.median(self.runs)

  @property
  def compile_s(self) -> float:
    return max(self.first_s - self.warm_s, 0.0)


# What jax.monitoring reports of tracing, lowering and XLA compilation.
COMPILE_EVENTS = ('/jax/core/compile/jaxpr_trace_duration', '/jax/core/compile/jaxpr_to_mlir_module_duration',
                  '/jax/core/compile/backend_compile_duration')
_compile_seconds = [0.0]


def _on_event(event: str, seconds: float, **kwargs) -> None:
  if event in COMPILE_EVENTS:
    _compile_seconds[0] += seconds


jax.monitoring.register_event_duration_secs_listener(_on_event)


def timed(call: Callable[[], object], repeats: int) -> Timing:
  """One warm-up call, then `repeats` timed ones (every call returns host arrays, so it has finished)."""
  def once() -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
  compiled = _compile_seconds[0]
  first = once()
  timing = Timing(first, [once() for _ in range(repeats)])
  timing.jax_compile_s = _compile_seconds[0] - compiled
  return timing


def noise(clips: int, seconds: float, rate: int) -> list[np.ndarray]:
  """`clips` float32 clips of white noise at -20 dBFS RMS (seed 0)."""
  rng = np.random.default_rng(0)
  return [(0.1 * rng.standard_normal(round(seconds * rate))).astype(np.float32) for _ in range(clips)]


def millions(tree) -> float:
  return sum(int(np.prod(np.shape(x))) for x in jax.tree.leaves(tree)) / 1e6


def torch_millions(module) -> float:
  return sum(p.numel() for p in module.parameters()) / 1e6


def _torch():
  import torch
  torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count())
  return torch


@dataclasses.dataclass
class Measured:
  """One model's measurements: JAX always, the original when it ran."""
  params_m: float
  load_s: float
  jax: Timing
  original: str | None = None  # what the original is
  original_params_m: float | None = None
  original_timing: Timing | None = None
  skipped: str | None = None  # why the original did not run


def run_musicnn(clips: list[np.ndarray], folder: str, repeats: int) -> Measured:
  start = time.perf_counter()
  embedder = registry.get('musicnn').load(None, progress=False)
  load_s = time.perf_counter() - start
  named = [(f'clip{i}', a) for i, a in enumerate(clips)]
  out = Measured(millions(embedder.params), load_s, timed(lambda: embedder.embed(named), repeats))
  if FLAGS.originals and FLAGS['musicnn-tf'].value:
    out.original, out.original_params_m = 'musicnn (TensorFlow) extractor, per file', out.params_m
    try:
      out.original_timing = _musicnn_tf(clips, folder, repeats)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
      out.original_timing, out.skipped = None, f'musicnn original: {e}'
  return out


_MUSICNN_TF = """
import json, os, sys, time
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
from musicnn import extractor
repeats, paths = int(sys.argv[1]), sys.argv[2:]
def once():
  start = time.perf_counter()
  for path in paths:
    extractor.extractor(path, model='MTT_musicnn', extract_features=True)
  return time.perf_counter() - start
first = once()
print('TIMING ' + json.dumps({'first_s': first, 'runs': [once() for _ in range(repeats)]}))
"""


def _musicnn_tf(clips: list[np.ndarray], folder: str, repeats: int) -> Timing:
  """musicnn's original on the clips written as 16 kHz WAV files, in its own process (its module turns TF's eager
  mode off for the whole process). Raises RuntimeError when it fails (e.g. not installed)."""
  import soundfile
  paths = []
  for i, audio in enumerate(clips):
    paths.append(os.path.join(folder, f'musicnn_{i}.wav'))
    soundfile.write(paths[-1], audio, musicnn.SAMPLE_RATE, subtype='FLOAT')
  done = subprocess.run([sys.executable, '-c', _MUSICNN_TF, str(repeats), *paths], capture_output=True, text=True,
                        cwd=REPO_ROOT, timeout=FLAGS['musicnn-tf-timeout-s'].value)
  lines = [line for line in done.stdout.splitlines() if line.startswith('TIMING ')]
  if done.returncode or not lines:
    raise RuntimeError(f'exit {done.returncode}: {(done.stderr.strip().splitlines() or ["no output"])[-1]}')
  result = json.loads(lines[-1].removeprefix('TIMING '))
  return Timing(result['first_s'], result['runs'])


def run_vggish(clips: list[np.ndarray], folder: str, repeats: int) -> Measured:
  from reference import evaluation_models
  path = os.path.join(folder, 'vggish.pth')
  evaluation_models.vggish_checkpoint(path)
  start = time.perf_counter()
  embedder = registry.get('vggish').load(path, progress=False)
  load_s = time.perf_counter() - start
  named = [(f'clip{i}', a) for i, a in enumerate(clips)]
  out = Measured(millions(embedder.params), load_s, timed(lambda: embedder.embed(named), repeats))
  if FLAGS.originals:
    torch = _torch()
    from reference.vggish import VGG
    model = VGG().eval()
    model.load_state_dict(torch.load(path))
    windows = np.concatenate([vggish.example_windows(a) for a in clips])
    front_end = jax.jit(vggish.log_mel)
    batch = embedder.batch_size

    def original():
      out = []
      for start in range(0, len(windows), batch):
        examples = np.array(front_end(windows[start:start + batch]))  # [b, 96, 64], writable for torch
        with torch.inference_mode():
          out.append(model(torch.from_numpy(examples)[:, None]).numpy())
      return np.concatenate(out)

    out.original = 'reference/vggish.py VGG (PyTorch) on our front end'
    out.original_params_m = torch_millions(model)
    out.original_timing = timed(original, repeats)
  return out


def run_ast(clips: list[np.ndarray], folder: str, repeats: int) -> Measured:
  torch = _torch()
  import transformers

  from magnet_jax.evaluation.ast_classifier import AstClassifier
  labels = {i: f'class_{i}' for i in range(527)}
  config = transformers.ASTConfig(id2label=labels, label2id={v: k for k, v in labels.items()})
  torch.manual_seed(0)
  model = transformers.ASTForAudioClassification(config).eval()
  extractor = transformers.ASTFeatureExtractor()
  model.save_pretrained(folder)
  extractor.save_pretrained(folder)
  start = time.perf_counter()
  classifier = AstClassifier(folder, progress=False)
  load_s = time.perf_counter() - start
  named = [(f'clip{i}', a) for i, a in enumerate(clips)]
  out = Measured(millions(classifier.params), load_s, timed(lambda: classifier.label_probs(named), repeats))
  if FLAGS.originals:
    batch = classifier.batch_size

    def original():
      probs = []
      for start in range(0, len(clips), batch):
        inputs = extractor(clips[start:start + batch], sampling_rate=16000, return_tensors='pt')
        with torch.inference_mode():
          probs.append(model(**inputs).logits.softmax(-1).numpy())
      return np.concatenate(probs)

    out.original = 'transformers ASTFeatureExtractor + ASTForAudioClassification'
    out.original_params_m = torch_millions(model)
    out.original_timing = timed(original, repeats)
  return out


def run_clap(clips: list[np.ndarray], folder: str, repeats: int) -> Measured:
  torch = _torch()
  import transformers

  from magnet_jax.evaluation.clap import ClapScorer
  from reference import evaluation_models
  audio = dict(patch_embeds_hidden_size=128, depths=[2, 2, 12, 2], num_attention_heads=[4, 8, 16, 32],
               hidden_size=1024, enable_fusion=False)
  config = transformers.ClapConfig(text_config={}, audio_config=audio, projection_dim=512)  # text: RoBERTa-base
  torch.manual_seed(0)
  model = transformers.ClapModel(config).eval()
  model.save_pretrained(folder)
  extractor = transformers.ClapFeatureExtractor(feature_size=64, max_length_s=10, frequency_min=50,
                                                frequency_max=14000, truncation='rand_trunc', padding='repeatpad')
  extractor.save_pretrained(folder)
  evaluation_models._tokenizer_files(folder)
  start = time.perf_counter()
  scorer = ClapScorer(folder, progress=False)
  load_s = time.perf_counter() - start
  named = [(f'clip{i}', a) for i, a in enumerate(clips)]
  out = Measured(millions(scorer.params['audio']), load_s, timed(lambda: scorer.embed_audio(named), repeats))
  if FLAGS.originals:
    batch = scorer.batch_size

    def original():
      embeddings = []
      for start in range(0, len(clips), batch):
        inputs = extractor(clips[start:start + batch], sampling_rate=48000, return_tensors='pt')
        with torch.inference_mode():
          features = model.get_audio_features(input_features=inputs['input_features'])
        features = getattr(features, 'pooler_output', features)  # transformers 5 may return an output object
        embeddings.append(torch.nn.functional.normalize(features, dim=-1).numpy())
      return np.concatenate(embeddings)

    out.original = 'transformers ClapFeatureExtractor + ClapModel.get_audio_features'
    out.original_params_m = torch_millions(model.audio_model) + torch_millions(model.audio_projection)
    out.original_timing = timed(original, repeats)
  return out


RUNNERS = {'musicnn': (run_musicnn, musicnn.SAMPLE_RATE), 'vggish': (run_vggish, vggish.SAMPLE_RATE),
           'ast': (run_ast, 16000), 'clap': (run_clap, 48000)}


def row(model: str, clips: int, seconds: float, m: Measured) -> dict:
  audio = clips * seconds
  t = m.original_timing
  rate = lambda s: round(audio / s, 2)
  r = {'model': model, 'size': SIZES[model], 'params_m': round(m.params_m, 2), 'clips': clips, 'clip_s': seconds,
       'jax_load_s': round(m.load_s, 2), 'jax_compile_s': round(m.jax.jax_compile_s, 2),
       'jax_s': round(m.jax.warm_s, 3),
       'jax_rate': rate(m.jax.warm_s), 'original': m.original if t else None,
       'original_params_m': round(m.original_params_m, 2) if t else None,
       'original_compile_s': round(t.compile_s, 2) if t else None, 'original_s': round(t.warm_s, 3) if t else None,
       'original_rate': rate(t.warm_s) if t else None, 'ratio': round(t.warm_s / m.jax.warm_s, 2) if t else None}
  assert tuple(r) == ROW_KEYS
  return r


def _cell(value) -> str:
  return '-' if value is None else f'{value:,}' if isinstance(value, (int, float)) else str(value)


def markdown(results: dict) -> str:
  machine, settings, conditions = results['machine'], results['settings'], results['conditions']
  lines = [f'**{machine["cpu"]}**, jax {machine["jax"]}, torch {machine["torch"]}, transformers '
           f'{machine["transformers"]}, tensorflow {machine["tensorflow"]}; {settings["clips"]} clips of '
           f'{settings["clip_s"]} s, {settings["repeats"]} timed call(s) after a warm-up; load average (1/5/15 min) '
           f'{conditions["load_start"]} at start, {conditions.get("load_end")} at end.', '',
           f'`{results["command"]}`', '',
           '| model | size | params (M) | JAX s-audio/s | original | original s-audio/s | JAX / original | '
           'JAX compile (s) | JAX load (s) |',
           '|---|---|---|---|---|---|---|---|---|']
  for r in results['rows']:
    cells = (r['model'], r['size'], r['params_m'], r['jax_rate'], r['original'], r['original_rate'],
             None if r['ratio'] is None else f'{r["ratio"]}x', r['jax_compile_s'], r['jax_load_s'])
    lines.append('| ' + ' | '.join(_cell(c) for c in cells) + ' |')
  for s in results['skipped']:
    lines.append(f'\nskipped: {s}')
  lines.append('\ns-audio/s: seconds of audio embedded per second of wall time (warm median). JAX / original: the '
               "original's time / JAX's (> 1: JAX is faster). CLAP params: the audio encoder and its projection.")
  return '\n'.join(lines) + '\n'


def write(results: dict, path: str) -> str:
  """Writes the JSON to `path` and the Markdown beside it (.md), atomically; returns the Markdown."""
  text = markdown(results)
  atomic_write(path, lambda tmp: open(tmp, 'w').write(json.dumps(results, indent=1) + '\n'))
  atomic_write(os.path.splitext(path)[0] + '.md', lambda tmp: open(tmp, 'w').write(text))
  return text


def main() -> None:
  clips, seconds, repeats = (2, 2.0, 1) if FLAGS.quick else (FLAGS.clips, FLAGS.seconds, FLAGS.repeats)
  started = time.perf_counter()
  results = {'machine': {'cpu': cpu_name(), 'jax': jax.__version__, 'torch': version('torch'),
                         'transformers': version('transformers'), 'tensorflow': version('tensorflow')},
             'command': 'python -m benchmarks.evaluation_speed ' + ' '.join(sys.argv[1:]),
             'settings': {'models': list(FLAGS.models), 'clips': clips, 'clip_s': seconds, 'repeats': repeats,
                          'originals': FLAGS.originals},
             'rows': [], 'skipped': [],
             'conditions': {'load_start': [round(x, 2) for x in os.getloadavg()],
                            'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY')}}
  text = ''
  for model in tqdm.tqdm(FLAGS.models, desc='models', unit='model'):
    runner, rate = RUNNERS[model]
    logging.info('%s: %d clips of %.1f s at %d Hz', model, clips, seconds, rate)
    folder = tempfile.mkdtemp(prefix=f'evaluation_speed_{model}_')
    try:
      measured = runner(noise(clips, seconds, rate), folder, repeats)
    finally:
      shutil.rmtree(folder, ignore_errors=True)
    if measured.skipped:
      logging.warning('%s', measured.skipped)
      results['skipped'].append(measured.skipped)
    results['rows'].append(row(model, clips, seconds, measured))
    results['conditions'].update({'load_end': [round(x, 2) for x in os.getloadavg()],
                                  'wall_s': round(time.perf_counter() - started, 1)})
    text = write(results, FLAGS.out)  # after every model: a run cut short keeps what it measured
  print(text)


if __name__ == '__main__':
  runner.run('python -m benchmarks.evaluation_speed', main)
