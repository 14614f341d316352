"""Fixtures for the web UI tests: hand-made run folders in a per-test saves/ (nothing trains)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


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
