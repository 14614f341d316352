"""engine.runs.warm: a warm start is the process a cold start is (its argument, log, exit code, signals,
session), and a start it cannot give the same goes cold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from engine.config import from_dict
from engine.runs import warm
from engine.runs.folder import create_run
from engine.runs.process import spawn, start_engine, wait
from engine.runs.status import read_status
from tests.helpers import REPO, tiny_config


@pytest.fixture(autouse=True)
def warm_starts_on(monkeypatch):
    monkeypatch.delenv(warm.WARM_ENV, raising=False)
    if not warm.usable([sys.executable, "-m", "engine.train"]):
        pytest.skip("this machine has a GPU driver: starts are cold here")


def test_a_warm_start_runs_the_module_with_its_argument_log_and_exit_code(tmp_path):
    """engine.train on a folder without config.yaml prints its usage and exits 2, as `python -m` does."""
    log = tmp_path / "engine.log"
    proc = spawn([sys.executable, "-m", "engine.train", str(tmp_path)], tmp_path, log)
    assert isinstance(proc, warm.WarmProcess)
    assert proc.wait(timeout=300) == 2 and proc.returncode == 2 and proc.poll() == 2
    assert "usage: python -m engine.train RUN_DIR" in log.read_text()
    assert read_status(tmp_path).pid == proc.pid


def test_a_warm_started_engine_trains_in_its_own_session_and_a_kill_is_its_exit_code(tiny_model):
    run = create_run(from_dict(tiny_config("sft", training={"max_steps": 100000}, samples={"count": 0})))
    proc = start_engine(run)
    assert isinstance(proc, warm.WarmProcess)
    while read_status(run.path).step < 2:
        assert proc.poll() is None, run.log_file.read_text()[-3000:]
        time.sleep(0.05)
    assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.1)
    proc.kill()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert wait(run, proc).state == "crashed"


def test_a_start_the_warm_interpreter_cannot_give_the_same_goes_cold(tmp_path, monkeypatch):
    command = [sys.executable, "-m", "engine.train", str(tmp_path)]
    assert warm.usable([sys.executable, "-m", "accelerate.commands.launch", *command[1:]]) is None
    monkeypatch.setenv(warm.WARM_ENV, "0")
    assert warm.usable(command) is None
    assert warm.start(command, dict(os.environ), tmp_path / "engine.log", REPO) is None  # spawn starts it cold


class Interpreter:
    """Stands in for warm.WarmInterpreter's process (this test is about which one a start picks)."""

    def __init__(self, env, cwd):
        self.env, self.running, self.closed = env, False, False

    def alive(self):
        return not self.closed

    def idle(self):
        return not self.running

    def close(self):
        self.closed = True


def test_each_environment_gets_its_own_warm_interpreter_and_idle_ones_are_closed(monkeypatch):
    """Variables the libraries read at import (PYTHONPATH) need an interpreter of their own; the
    workbench's own (read when the engine runs) do not."""
    monkeypatch.setattr(warm, "WarmInterpreter", Interpreter)
    monkeypatch.setattr(warm, "_warm", {})
    base = {"PATH": "/bin", "WORKBENCH_SAVES": "/a"}
    first = warm.interpreter(base, REPO)
    assert warm.interpreter({**base, "WORKBENCH_SAVES": "/b", "WORKBENCH_CPU_DTYPE": "float32"}, REPO) is first
    assert first.env == base  # its imports see what the first start's would have
    first.running = True
    other = warm.interpreter({**base, "PYTHONPATH": "/t"}, REPO)
    assert other is not first and not first.closed  # a child of it still runs
    first.running = False
    assert warm.interpreter({**base, "PYTHONPATH": "/u"}, REPO) not in (first, other)
    assert first.closed and other.closed
