#!/usr/bin/env bash
# The GPU benchmark in one command (benchmarks/README.md, "On a GPU"). From the repository root:
#
#   benchmarks/gpu.sh prepare          # where PyPI is reachable: the pure-Python wheels into .whl/ (git-ignored)
#   benchmarks/gpu.sh run OUT_DIR      # on the GPU machine: checks and installs them, then the plan in < 8 minutes
#   benchmarks/gpu.sh dry-run OUT_DIR  # on a CPU: the same script on the tiny model, one repeat (CI runs it)
#
# OUT_DIR gets results.json, results.md and profile/ (a jax.profiler trace of one magnet-jax decode); then each
# magnet-jax row of results.json gets the ahead-of-time prediction of its program beside it (a compile per row, a few
# minutes more; docs/scaling.md). The GPU image
# has jax (CUDA), flax, optax, orbax, torch (CUDA), transformers and einops; everything else the benchmark imports
# is listed in benchmarks/gpu-requirements.txt. magnet_jax, benchmarks and reference import from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
WHEELS=.whl
REQUIREMENTS=benchmarks/gpu-requirements.txt

requirements() { grep -v '^#' "$REQUIREMENTS" | grep -v '^$'; }

check_wheels() {  # every pinned requirement has its wheel in .whl/ (file names normalise '-' to '_')
  local missing=()
  for requirement in $(requirements); do
    local name=${requirement%%==*} version=${requirement#*==}
    ls "$WHEELS" 2>/dev/null | grep -qi "^${name//-/_}-${version}-.*\.whl$" || missing+=("$requirement")
  done
  if (( ${#missing[@]} )); then
    echo "gpu.sh: missing in $WHEELS/: ${missing[*]}; run 'benchmarks/gpu.sh prepare' where PyPI is reachable" \
         "and carry $WHEELS" >&2
    exit 1
  fi
}

case "${1:-}" in
  prepare)
    mkdir -p "$WHEELS"
    "$PYTHON" -m pip wheel --no-deps -w "$WHEELS" -r "$REQUIREMENTS"
    check_wheels
    du -sh "$WHEELS" ;;
  run)
    out=${2:?usage: benchmarks/gpu.sh run OUT_DIR}
    check_wheels
    "$PYTHON" -m pip install --quiet --no-index --no-deps "$WHEELS"/*.whl
    "$PYTHON" -c 'import jax; assert jax.default_backend() == "gpu", jax.devices(); import reference.audiocraft_lm' \
      || { echo "gpu.sh: no GPU for JAX, or audiocraft does not import (see above)" >&2; exit 1; }
    "$PYTHON" -m benchmarks.latency --gpu --out="$out/results.json"
    # Beside each measured magnet-jax row, the roofline of the same program compiled for this GPU (docs/scaling.md).
    "$PYTHON" -m benchmarks.aot_plan --predict="$out/results.json" || echo "gpu.sh: no predictions (see above)" >&2 ;;
  dry-run)
    out=${2:?usage: benchmarks/gpu.sh dry-run OUT_DIR}
    "$PYTHON" -m benchmarks.latency --gpu --dry-run --out="$out/results.json" ;;
  *)
    echo "usage: benchmarks/gpu.sh prepare | run OUT_DIR | dry-run OUT_DIR" >&2
    exit 2 ;;
esac
