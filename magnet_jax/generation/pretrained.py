"""Loading MAGNeT pipelines from local folders: Meta's released ones and the project's own exported ones.

`load(folder)` accepts either layout:
- exported (`save_pipeline`): `pipeline.json` (LM config, decoding defaults, text encoder spec), `lm.safetensors`
  and `codec/` (`magnet_jax.codec.save_codec`). Loads without torch or pickle; the embedded default is one.
- released (the files of facebook/magnet-small-10secs etc., `load_released`).

A released folder (the files of facebook/magnet-small-10secs etc.) holds `state_dict.bin` (the LM) and
`compression_state_dict.bin` (the codec: full weights, or a pointer to facebook/encodec_32khz whose transformers
folder must then be given or lie beside). The T5 encoder is not in the checkpoint: its transformers folder (named
by the checkpoint's config, e.g. t5-base) is given with `t5=` or found beside. Nothing is downloaded.

Variants and what their configs resolve to (configs/<name>.py):
  magnet-small-10secs    dim 1024, 24 layers, 16 heads, t5-base (768), 32 kHz EnCodec 4 x 2048 @ 50 Hz, 10 s
  magnet-medium-10secs   dim 1536, 48 layers, 24 heads, t5-base, 32 kHz, 10 s
  magnet-small-30secs    as small, 30 s segments (T = 1500)
  magnet-medium-30secs   as medium, 30 s segments
  audio-magnet-small     dim 1024, 24 layers, t5-large (1024), 16 kHz EnCodec (stride 320) 4 x 2048 @ 50 Hz, 10 s
  audio-magnet-medium    dim 1536, 48 layers, t5-large, 16 kHz, 10 s
  hybrid-magnet-small    magnet-small with the delay codebook pattern (AR prefix + masked decoding), 30 s
  hybrid-magnet-medium   magnet-medium, hybrid, 30 s
"""
import dataclasses
import functools
import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence

import jax
import yaml

from magnet_jax import codec
from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import lora as lora_lib
from magnet_jax.generation.pipeline import MagnetPipeline
from magnet_jax.io import hub, torch_pickle
from magnet_jax.io import params as params_io
from magnet_jax.io.audiocraft import lm_from_package, load_audiocraft_lm
from magnet_jax.io.errors import CheckpointError
from magnet_jax.io.folders import find_model_folder
from magnet_jax.models.config import MagnetConfig
from magnet_jax.models.params import init_params
from magnet_jax.text import TextEncoder

LM_FILE = 'state_dict.bin'
CODEC_FILE = 'compression_state_dict.bin'
PIPELINE_FILE = 'pipeline.json'
PIPELINE_FORMAT = 'magnet-jax-pipeline'
# The tiny MAGNeT the project trains on its own corpus, shipped with the package (see configs/default_model.py).
EMBEDDED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'assets', 'default')
EMBEDDED_BUILD = '`python -m magnet_jax.apps.default_model --workdir=/tmp/magnet-embedded` (configs/default_model.py)'


def _text_encoder_name(xp_cfg: Mapping) -> str:
  for cond in (xp_cfg.get('conditioners') or {}).values():
    if isinstance(cond, Mapping) and cond.get('model') == 't5':
      return str(cond['t5']['name'])
  raise CheckpointError('the checkpoint config has no T5 text conditioner (conditioners.*.model: t5)')


def load_released(folder: str | os.PathLike, t5: str | os.PathLike | None = None,
                  codec_dir: str | os.PathLike | None = None, **config_overrides) -> MagnetPipeline:
  """A released MAGNeT folder -> MagnetPipeline.

  Args:
    folder: holds state_dict.bin and compression_state_dict.bin.
    t5: the transformers T5 folder (t5-base / t5-large); default: `<folder>/<name>` or `<folder>/../<name>`.
    codec_dir: the transformers EnCodec folder when compression_state_dict.bin is a pointer; default: found
      beside like `t5`.
    **config_overrides: MagnetConfig fields to override (e.g. dtype='bfloat16').

  Raises:
    CheckpointError / FileNotFoundError / ValueError: a missing or corrupt file, a missing T5 folder, or a codec
      whose codebooks, codebook size or sample rate disagree with the LM.
  """
  folder = os.path.abspath(os.fspath(folder))
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'checkpoint folder not found: {folder}')
  for name in (LM_FILE, CODEC_FILE):
    if not os.path.isfile(os.path.join(folder, name)):
      raise CheckpointError(f'{folder} is not a released MAGNeT folder: {name} is missing')
  roots = [folder, os.path.dirname(folder)]
  codec_config, codec_params = codec.load_audiocraft(os.path.join(folder, CODEC_FILE), codec_dir, search=roots)
  lm_path = os.path.join(folder, LM_FILE)
  package = torch_pickle.load(lm_path)
  lm_config, lm_params = lm_from_package(package, lm_path, frame_rate=codec_config.frame_rate, **config_overrides)
  xp_cfg = yaml.safe_load(package['xp.cfg'])
  sample_rate = xp_cfg.get('sample_rate')
  if sample_rate is not None and int(sample_rate) != codec_config.sample_rate:
    raise CheckpointError(f'the LM was trained at sample_rate={sample_rate} but the codec runs at '
                          f'{codec_config.sample_rate} Hz')
  t5_name = _text_encoder_name(xp_cfg)
  t5_folder = os.fspath(t5) if t5 is not None else find_model_folder(t5_name, roots)
  if t5_folder is None:
    raise FileNotFoundError(f'the {t5_name} text encoder folder was not found beside {folder}: pass its '
                            f'transformers folder (t5=... / --t5 DIR)')
  return MagnetPipeline(lm_config, lm_params, codec_config, codec_params, TextEncoder.from_t5_folder(t5_folder))


def save_pipeline(folder: str | os.PathLike, pipeline: MagnetPipeline, text_encoder: str, **metadata) -> None:
  """Exports a pipeline as a folder `load` reads without torch: pipeline.json, lm.safetensors, codec/.

  Args:
    folder: destination (created; each file written atomically).
    pipeline: what to export.
    text_encoder: its spec for `TextEncoder.from_spec` ('minilm', 't5:FOLDER', 'bert:FOLDER'); a relative FOLDER
      is resolved against the exported folder when loading.
    **metadata: JSON-serialisable facts kept in pipeline.json (training steps, scores, the rebuild command...).
  """
  folder = os.fspath(folder)
  codec.save_codec(os.path.join(folder, 'codec'), pipeline.codec_config, pipeline.codec_params)
  params_io.save_params(os.path.join(folder, 'lm.safetensors'), pipeline.lm_params)
  params_io.save_json(os.path.join(folder, PIPELINE_FILE), {
      'format': PIPELINE_FORMAT, 'lm': dataclasses.asdict(pipeline.lm_config),
      'decoding': dataclasses.asdict(pipeline.decoding), 'text_encoder': text_encoder,
      'duration': pipeline.duration, 'metadata': metadata})


def load_exported(folder: str | os.PathLike, **config_overrides) -> MagnetPipeline:
  """A folder written by `save_pipeline` -> MagnetPipeline."""
  folder = os.path.abspath(os.fspath(folder))
  spec = params_io.load_json(os.path.join(folder, PIPELINE_FILE))
  if not isinstance(spec, Mapping) or spec.get('format') != PIPELINE_FORMAT:
    raise CheckpointError(f'{folder}/{PIPELINE_FILE}: not a magnet-jax pipeline (format {PIPELINE_FORMAT!r})')
  try:
    lm_config = MagnetConfig.from_dict({**spec['lm'], **config_overrides})
    decoding = DecodingConfig(**spec['decoding'])
  except (KeyError, TypeError, ValueError) as e:
    raise CheckpointError(f'{folder}/{PIPELINE_FILE}: invalid config ({e})') from e
  kind, _, text_folder = str(spec['text_encoder']).partition(':')
  text_spec = f'{kind}:{os.path.join(folder, text_folder)}' if text_folder else kind
  codec_config, codec_params = codec.load_codec(os.path.join(folder, 'codec'))
  lm_path = os.path.join(folder, 'lm.safetensors')
  lm_params = params_io.load_params(lm_path)
  params_io.check_shapes(lm_path, lm_params, jax.eval_shape(functools.partial(init_params, lm_config),
                                                            jax.random.key(0)), PIPELINE_FILE)
  return MagnetPipeline(lm_config, lm_params, codec_config, codec_params, TextEncoder.from_spec(text_spec),
                        decoding=decoding, duration=spec.get('duration'))


def default_dtype() -> str:
  """The LM's compute dtype for this machine: bfloat16 on accelerators (GPU, TPU), float32 on CPU.

  Parameters stay float32, and the logits, softmax and sampling run in float32 either way.
  """
  return 'float32' if jax.default_backend() == 'cpu' else 'bfloat16'


def load(folder: str | os.PathLike | None = None, lora: str | Sequence[str] = (),
         lora_scale: float | Sequence[float] = 1.0, **kwargs) -> MagnetPipeline:
  """A MagnetPipeline from a local folder: exported (pipeline.json) or released (state_dict.bin + codec).

  Args:
    folder: the folder, a Hugging Face Hub name ('facebook/magnet-small-10secs': its cached snapshot, downloaded
      when huggingface_hub and a network are there), or None for the embedded default (`EMBEDDED_DIR`).
    lora: LoRA adapter file(s) (`lora.safetensors` of a LoRA run) merged into the LM, in order.
    lora_scale: each adapter's strength (one for all, or one per file); 1 applies it as trained.
    **kwargs: `load_released` options (t5=, codec_dir=) and MagnetConfig overrides; dtype defaults to
      `default_dtype()` (pass dtype='float32' for full precision on an accelerator).

  Raises:
    FileNotFoundError / CheckpointError: the folder or an adapter is missing or holds neither layout;
    ValueError: an adapter made for another architecture.
  """
  files = [os.fspath(lora)] if isinstance(lora, (str, os.PathLike)) else [os.fspath(f) for f in lora]
  scales = list(lora_scale) if isinstance(lora_scale, Sequence) else [float(lora_scale)] * len(files)
  if len(scales) != len(files):
    raise ValueError(f'{len(files)} LoRA adapters but {len(scales)} lora_scale values')
  pipeline = _load_folder(folder, **kwargs)
  if not files:
    return pipeline
  params = lora_lib.apply_adapters(pipeline.lm_params, pipeline.lm_config, list(zip(files, scales, strict=True)))
  return dataclasses.replace(pipeline, lm_params=params)


def _load_folder(folder: str | os.PathLike | None, **kwargs) -> MagnetPipeline:
  if folder is None and not os.path.isfile(os.path.join(EMBEDDED_DIR, PIPELINE_FILE)):
    raise FileNotFoundError(f'the embedded default model is not built yet ({EMBEDDED_DIR} has no {PIPELINE_FILE}): '
                            f'build it with {EMBEDDED_BUILD}, or pass a checkpoint folder (folder=... / '
                            '--checkpoint DIR)')
  folder = EMBEDDED_DIR if folder is None else os.fspath(folder)
  if not os.path.isdir(folder) and '/' in folder and hub.is_name(folder):
    folder = hub.resolve(folder)  # 'facebook/magnet-small-10secs': the Hugging Face cache, or a download
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'checkpoint folder not found: {folder}')
  kwargs.setdefault('dtype', default_dtype())
  if os.path.isfile(os.path.join(folder, PIPELINE_FILE)):
    unknown = sorted(set(kwargs) & {'t5', 'codec_dir'})
    if unknown:
      raise ValueError(f'{unknown} only apply to released folders; {folder} is an exported pipeline')
    return load_exported(folder, **kwargs)
  if os.path.isfile(os.path.join(folder, LM_FILE)):
    return load_released(folder, **kwargs)
  raise CheckpointError(f'{folder} holds neither {PIPELINE_FILE} (an exported pipeline) nor {LM_FILE} '
                        '(a released MAGNeT folder)')


def load_rescorer(folder: str | os.PathLike, **config_overrides) -> tuple[MagnetConfig, dict]:
  """A MusicGen-style (causal) LM to rescore MAGNeT's tokens: a released folder (state_dict.bin) or the file.

  Returns:
    (config, params) for `MagnetPipeline(rescorer_config=..., rescorer_params=...)`.

  Raises:
    FileNotFoundError / CheckpointError: missing or unreadable; ValueError: not an autoregressive LM.
  """
  path = os.fspath(folder)
  if not os.path.exists(path):
    raise FileNotFoundError(f'rescorer checkpoint not found: {path}')
  config, params = load_audiocraft_lm(path, **{'dtype': default_dtype(), **config_overrides})
  if not config.causal:
    raise ValueError(f'{path} is not an autoregressive (MusicGen-style) LM: a rescorer must be causal')
  return config, params


@dataclasses.dataclass(frozen=True)
class Merged:
  """What `merge_adapters` did: the folders, the (adapter file, scale) pairs in order and the kernels they changed."""
  base: str
  out: str
  adapters: list[tuple[str, float]]
  kernels: int

  def summary(self) -> str:
    """One line: what was merged, and the command that samples the result."""
    files = ', '.join(f'{file} (scale {scale:g})' for file, scale in self.adapters)
    return (f'merged {len(self.adapters)} adapter(s) {files} into {self.kernels} kernel(s) of {self.base}: wrote '
            f'{self.out}; sample it with: magnet-jax --checkpoint {shlex.quote(self.out)} --prompt "..."')


def merge_adapters(folder: str | os.PathLike | None, adapters: Sequence[str], out: str | os.PathLike,
                   overwrite: bool = False) -> Merged:
  """Exports the pipeline of `folder` (None: the embedded default) with LoRA `adapters` ('FILE' or 'FILE:scale',
  merged in order) as a plain exported folder `out`, which loads and samples like any other; returns what it did.

  `out` is written as a hidden temporary folder beside it and renamed into place, so it is never half-written; an
  existing `out` is replaced only with `overwrite`, and never when it is `folder` itself. A text encoder folder
  the source names relative to itself is named by its absolute path in `out`.

  Raises:
    ValueError: no adapters, or `out` is the source folder; FileExistsError: `out` exists (without `overwrite`);
    CheckpointError / FileNotFoundError: `folder` is not an exported pipeline.
  """
  if not adapters:
    raise ValueError('give at least one LoRA adapter (--lora FILE[:scale])')
  folder, out = os.path.abspath(os.fspath(folder or EMBEDDED_DIR)), os.path.abspath(os.fspath(out))
  if os.path.exists(out) and os.path.samefile(out, folder):
    raise ValueError(f'--out {out} is the base folder: write the merged pipeline somewhere else')
  if os.path.exists(out) and not (overwrite and os.path.isdir(out)):
    raise FileExistsError(f'{out} exists: pass --overwrite to replace it' if os.path.isdir(out) else
                          f'{out} exists and is not a folder')
  spec = params_io.load_json(os.path.join(folder, PIPELINE_FILE))  # released folders: export them first
  parsed = [lora_lib.parse_spec(s) for s in adapters]
  pipeline = load(folder, lora=[f for f, _ in parsed], lora_scale=[s for _, s in parsed], dtype=spec['lm']['dtype'])
  kind, _, text_folder = str(spec['text_encoder']).partition(':')
  text_encoder = f'{kind}:{os.path.join(folder, text_folder)}' if text_folder else kind
  parent = os.path.dirname(out)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=f'.{os.path.basename(out)}.{os.getpid()}.', suffix='.tmp')
  try:
    save_pipeline(tmp, pipeline, text_encoder, **{
        **spec.get('metadata', {}), 'lora': [{'file': f, 'scale': s} for f, s in parsed], 'base': folder})
    os.chmod(tmp, 0o755)  # mkdtemp makes it private
    if os.path.exists(out):  # the old folder moves aside whole, then goes
      old = tempfile.mkdtemp(dir=parent, prefix=f'.{os.path.basename(out)}.{os.getpid()}.', suffix='.old')
      os.replace(out, old)
      os.replace(tmp, out)
      shutil.rmtree(old)
    else:
      os.replace(tmp, out)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  kernels = set().union(*(lora_lib.adapted_kernels(file) for file, _ in parsed))
  return Merged(folder, out, [(os.path.abspath(file), scale) for file, scale in parsed], len(kernels))
