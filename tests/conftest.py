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
    parser.addoption("--cpu-dtype", choices=("bfloat16", "float32"),
                     help="what model.dtype auto computes in, instead of measuring this CPU: test as a "
                          "machine that measures otherwise would (engine subprocesses inherit it)")


def pytest_configure(config):
    if config.getoption("--cpu-dtype"):
        os.environ["WORKBENCH_CPU_DTYPE"] = config.getoption("--cpu-dtype")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse-files"):
        files = list(dict.fromkeys(item.path for item in items))
        rank = {path: i for i, path in enumerate(reversed(files))}
        items.sort(key=lambda item: rank[item.path])  # a stable sort: each file keeps its own order
