"""engine.runs.process: an engine runs in a session of its own, so killing the server (or the CLI)
that started it, with its whole process group, leaves the training running; it is found again
from its folder and stops (saving its adapter) when asked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from engine.config import from_dict
from engine.runs.folder import create_run
from engine.runs.process import stop, wait
from tests.helpers import REPO, tiny_config

STARTER = """
import sys, time
from pathlib import Path
from engine.runs.folder import RunFolder
from engine.runs.process import start_engine
start_engine(RunFolder(Path(sys.argv[1])))
time.sleep(600)
"""


def wait_for(condition, seconds: float, what: str, log) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}\n{log()[-3000:]}"
        time.sleep(0.1)


def test_an_engine_outlives_the_server_that_started_it(tiny_model):
    run = create_run(from_dict(tiny_config("sft", training={"max_steps": 100000}, samples={"count": 0})))
    server = subprocess.Popen([sys.executable, "-c", STARTER, str(run.path)], cwd=REPO, start_new_session=True)

    def log() -> str:
        return run.log_file.read_text() if run.log_file.exists() else ""

    try:
        wait_for(lambda: run.status().step >= 1, 120, "the engine's first step", log)
        os.killpg(server.pid, signal.SIGKILL)  # the server and everything in its process group
        server.wait(timeout=30)
        step = run.status().step
        wait_for(lambda: run.status().step > step, 60, "the engine to go on training", log)
        assert run.status().engine_alive and run.status().pid != server.pid
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        stop(run)
    status = wait(run, interval=0.1)
    assert status.state == "stopped" and (run.adapter_dir / "adapter_model.safetensors").is_file()
