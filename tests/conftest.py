"""Shared fixtures: an isolated saves/ folder and a tiny random model, both built offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def saves(tmp_path_factory) -> Path:
    """All runs and models of the test session live here, never in the real saves/."""
    root = tmp_path_factory.mktemp("saves")
    os.environ["WORKBENCH_SAVES"] = str(root)  # inherited by engine subprocesses too
    os.environ["HF_HUB_OFFLINE"] = "1"
    return root


@pytest.fixture(scope="session")
def tiny_model(saves) -> Path:
    from engine.models.tiny import make_tiny_model

    return make_tiny_model(saves / "models" / "tiny")


@pytest.fixture
def runs_env(tmp_path, monkeypatch) -> Path:
    """An empty saves/ of this test's own, so run listings hold only the test's runs."""
    monkeypatch.setenv("WORKBENCH_SAVES", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def pytest_addoption(parser):
    parser.addoption("--reverse-files", action="store_true",
                     help="run the test files in reverse order (make test does: no test may lean on a file "
                          "that ran before it)")
    parser.addoption("--cpu-dtype", choices=("float32", "bfloat16", "measure"), default="float32",
                     help="what model.dtype auto computes in on a CPU (engine subprocesses inherit it). "
                          "float32 by default: a CPU whose bf16 speed-up measures near the threshold would "
                          "otherwise pick differently from process to process and test to test. bfloat16 "
                          "tests as an AMX machine computes; measure lets each process measure this CPU.")


def pytest_configure(config):
    # One thread for torch here and in every engine the tests start (unless set already): the tiny model
    # trains faster on one (measured: an SFT run 8-10 s against 13-15 s on two), and make test's two
    # workers (pytest-xdist) then share the 2 cores instead of fighting over them. Set before torch loads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from engine.models.cpu_dtype import CPU_DTYPE_ENV

    chosen = config.getoption("--cpu-dtype")
    if chosen == "measure":
        os.environ.pop(CPU_DTYPE_ENV, None)
    else:
        os.environ[CPU_DTYPE_ENV] = chosen


@pytest.fixture(scope="module")
def float32_runs():
    """Runs and models of this module compute in float32 whatever --cpu-dtype says: its tests check
    formulas to 1e-5, and bf16 rounds at 4e-3 (use with pytestmark = usefixtures("float32_runs"))."""
    from engine.models.cpu_dtype import CPU_DTYPE_ENV

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CPU_DTYPE_ENV, "float32")
        yield


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse-files"):
        files = list(dict.fromkeys(item.path for item in items))
        rank = {path: i for i, path in enumerate(reversed(files))}
        items.sort(key=lambda item: rank[item.path])  # a stable sort: each file keeps its own order
