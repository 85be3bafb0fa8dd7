"""The package's rooms import only from the rooms below them (docs/architecture.md), their indexes list exactly what
they hold, and generating music imports none of the training, PyTorch or TensorFlow stacks."""
import ast
import pathlib
import re
import subprocess
import sys

from tests.helpers import REPO_ROOT

# Lowest first: a module may import its own room and the rooms before it.
# Serving sits below training so that no serving module can import training (its mesh comes from parallel/).
ROOMS = ('models', 'parallel', 'io', 'audio', 'text', 'codec', 'decoding', 'configs', 'corpus', 'data', 'generation',
         'evaluation', 'serving', 'training', 'apps')
PACKAGE = pathlib.Path(REPO_ROOT) / 'magnet_jax'


def _imports(path: pathlib.Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.add(node.module)
      names.update(f'{node.module}.{alias.name}' for alias in node.names)
    elif isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
  return names


def _room(module: str) -> str | None:
  parts = module.split('.')
  return parts[1] if len(parts) > 1 and parts[0] == 'magnet_jax' and parts[1] in ROOMS else None


def test_every_module_lives_in_a_room():
  loose = sorted(p.name for p in PACKAGE.glob('*.py') if p.name != '__init__.py')
  assert not loose, f'modules outside a room: {loose}'
  folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / '__init__.py').exists()}
  assert folders <= set(ROOMS), sorted(folders - set(ROOMS))


def _listed(package: pathlib.Path, entry: str) -> set[str]:
  """The names an `__init__` docstring lists: its lines `  NAME[, NAME ...]  description` whose NAMEs match `entry`
  (a module `\\w+\\.py` or a room `\\w+/`)."""
  names = set()
  for line in (ast.get_docstring(ast.parse((package / '__init__.py').read_text()), clean=False) or '').splitlines():
    match = re.match(rf'  ({entry}(?:, {entry})*)(?:  |$)', line)
    if match:
      names.update(match.group(1).split(', '))
  return names


def _difference(where: str, listed: set[str], real: set[str]) -> list[str]:
  return ([f'{where} does not list {name} (missing)' for name in sorted(real - listed)]
          + [f'{where} lists {name}, which does not exist (extra)' for name in sorted(listed - real)])


def test_every_index_lists_exactly_its_modules():
  wrong = _difference('magnet_jax/__init__.py', _listed(PACKAGE, r'\w+/'), {f'{room}/' for room in ROOMS})
  for room in ROOMS:
    real = {p.name for p in (PACKAGE / room).glob('*.py') if p.name != '__init__.py'}
    wrong += _difference(f'magnet_jax/{room}/__init__.py', _listed(PACKAGE / room, r'\w+\.py'), real)
  assert not wrong, '\n'.join(wrong)


def test_no_module_imports_from_a_room_above_it():
  upward = []
  for path in sorted(PACKAGE.rglob('*.py')):
    room = path.relative_to(PACKAGE).parts[0]
    if room not in ROOMS:
      continue
    for name in _imports(path):
      target = _room(name)
      if target is not None and ROOMS.index(target) > ROOMS.index(room):
        upward.append(f'{path.relative_to(REPO_ROOT)} imports {name}')
      assert not name.startswith(('reference', 'benchmarks', 'tests')), f'{path} imports {name}'
  assert not upward, '\n'.join(upward)


def test_generation_imports_no_training_torch_or_tensorflow_stack():
  blocked = ('torch', 'transformers', 'tensorflow', 'tensorflow_datasets', 'grain', 'orbax', 'optax')
  code = ('import sys\n'
          'from magnet_jax.apps import sample\n'
          'from magnet_jax import generation\n'
          'from magnet_jax.generation import pipeline, pretrained\n'
          f'loaded = sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r})\n'
          'assert not loaded, loaded\n')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO_ROOT, timeout=300)
