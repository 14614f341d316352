# The two commands a new machine needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install model run demo test clean-runs

# torch first and pinned: it takes the CPU wheel; unpinned it would pull GBs of CUDA packages.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(INSTALLED)

model: install
	$(PY) -m engine.cli models fetch

# Until the web UI lands, the product's main job is the SFT -> DPO demo on SmolLM2.
run: model
	$(PY) -m engine.cli demo

demo: run

test: install
	$(PY) -m pytest -q

clean-runs:
	rm -rf saves/runs
