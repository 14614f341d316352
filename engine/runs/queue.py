"""One training at a time: runs put in the queue (state ``queued``, ``in_queue`` set, no engine pid
yet) start in creation order when no engine is running.

Two trainings on the same CPU cores (or GPU) slow each other down several-fold, so the UI queues
a run instead of starting it beside another. The queue is nothing but run folders: a server
restart finds the same queue on disk, and a run can be cancelled before it starts.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from engine.config import RunConfig
from engine.runs.folder import create_run, list_runs, read_status, write_status
from engine.runs.process import engine_running, start_engine


def active_run(root: Path | None = None) -> Path | None:
    """The run whose engine process is alive, if any."""
    return next((run_dir for run_dir in list_runs(root) if engine_running(read_status(run_dir))), None)


def enqueue(cfg: RunConfig, root: Path | None = None) -> Path:
    """A new run folder that waits for its turn. Only runs put here are started by the queue: a
    folder some other tool created and never started is not run behind its back."""
    run_dir = create_run(cfg, root)
    write_status(run_dir, in_queue=True)
    return run_dir


def _is_waiting(status: dict) -> bool:
    return status.get("state") == "queued" and status.get("in_queue") and not status.get("pid")


def waiting_runs(root: Path | None = None) -> list[Path]:
    """Queued runs not started yet, oldest first (the order they will run in)."""
    statuses = {p: read_status(p) for p in list_runs(root)}
    waiting = [p for p, status in statuses.items() if _is_waiting(status)]
    return sorted(waiting, key=lambda p: (statuses[p].get("created") or 0, p.name))


def start_next(root: Path | None = None) -> tuple[Path, subprocess.Popen] | None:
    """Start the oldest waiting run if nothing is running; returns (run folder, process) or None."""
    if active_run(root) is not None:
        return None
    waiting = waiting_runs(root)
    if not waiting:
        return None
    return waiting[0], start_engine(waiting[0])


def cancel(run_dir: Path) -> bool:
    """Take a waiting run out of the queue (it never started, so there is nothing to save)."""
    if not _is_waiting(read_status(run_dir)):
        return False
    write_status(run_dir, state="cancelled", ended=time.time(), error="cancelled before it started")
    return True
