# The two commands a new machine needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

HOST ?= 127.0.0.1
PORT ?= 7860
# more `python -m webui` options, e.g. ARGS="--auth-file logins.txt" (a HOST other than loopback needs a login)
ARGS ?=
# The browser test drives Debian's chromium (never a downloaded one); sudo only when not root.
# Chromium draws Chinese text as empty boxes without a CJK font: Droid Sans Fallback covers Chinese,
# Japanese and Korean in a 1.8 MB package (fonts-wqy-zenhei is 7.5 MB, fonts-noto-cjk 57 MB).
CJK_FONT := fonts-droid-fallback
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install model browser run demo test clean-runs

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

browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	@fc-list :lang=zh 2>/dev/null | grep -q . || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends $(CJK_FONT); }

# The web UI at http://$(HOST):$(PORT), SmolLM2 preselected, the sample datasets registered.
run: model
	$(PY) -m webui --host $(HOST) --port $(PORT) $(ARGS)

# The SFT -> DPO -> compare demo on SmolLM2, in the terminal (about half an hour on 2 CPU cores).
demo: model
	$(PY) -m engine.cli demo

# The files run in reverse order: a test that leans on one run before it fails here, not by luck.
# Two workers (pytest-xdist), a file each at a time, one torch thread each (tests/conftest.py): the
# suite waits on subprocesses, servers and browsers about as much as it computes.
TEST_WORKERS ?= 2
test: install browser
	$(PY) -m pytest -q --reverse-files -n $(TEST_WORKERS) --dist loadfile

clean-runs:
	rm -rf saves/runs
