"""Start, follow and stop engine processes. Used by the CLI (and the web UI): they only touch
run folders and the `python -m engine.train RUN_DIR` subprocess, never the trainers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from engine.paths import REPO_ROOT
from engine.runs.folder import FINAL_STATES, read_metrics, read_status, write_status


def start_engine(run_dir: Path) -> subprocess.Popen:
    """Launch the engine on a run folder; its stdout/stderr go to engine.log."""
    run_dir = Path(run_dir)
    with open(run_dir / "engine.log", "a", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.train", str(run_dir)], cwd=REPO_ROOT,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal must not kill it half-saved
        )
    write_status(run_dir, pid=proc.pid)
    return proc


def stop_engine(run_dir: Path) -> bool:
    """Ask a running engine to stop (it saves its adapter first). False if none is running."""
    status = read_status(run_dir)
    pid = status.get("pid")
    if status.get("state") not in ("queued", "running") or not pid:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def engine_running(status: dict) -> bool:
    """A run whose engine process is alive (status.json alone can be stale after a kill -9)."""
    return status.get("state") in ("queued", "running") and is_alive(status.get("pid"))


def is_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def follow(run_dir: Path, on_update: Callable[[dict, list[dict]], None],
           proc: subprocess.Popen | None = None, interval: float = 0.5) -> dict:
    """Call on_update(status, new_metric_lines) until the run ends; return the final status.

    A run whose engine died without writing a final state (killed -9, out of memory) is marked
    failed here, so no run stays "running" forever.
    """
    seen, last_status = 0, None
    while True:
        status = read_status(run_dir)
        metrics = read_metrics(run_dir)
        if len(metrics) > seen or status != last_status:
            on_update(status, metrics[seen:])
            seen, last_status = len(metrics), status
        if status.get("state") in FINAL_STATES:
            return status
        exited = proc.poll() is not None if proc else not is_alive(status.get("pid"))
        if exited and read_status(run_dir).get("state") not in FINAL_STATES:
            return write_status(run_dir, state="failed", ended=time.time(),
                                error="the engine process exited without a final status; see engine.log")
        time.sleep(interval)
