"""One training at a time: runs put in the queue (state ``queued``, ``in_queue`` set, no engine pid
yet) start in creation order when no engine is running.

Two trainings on the same CPU cores (or GPU) slow each other down several-fold, so the web UI queues
a run instead of starting it beside another. The queue is nothing but run folders: a server
restart finds the same queue on disk, and a run can be cancelled before it starts. The web UI's
server runs ``worker`` in a thread; Start calls ``start_next`` at once as well.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from engine.config import ConfigError, RunConfig
from engine.runs.folder import RunFolder, create_run, list_runs
from engine.runs.process import reap, start_engine
from engine.runs.status import State

_LOCK = threading.Lock()  # Start (a request thread) and the worker thread must not both start a run


def active_run(root: Path | None = None) -> RunFolder | None:
    """The run whose engine process is alive, if any."""
    return next((run for run in list_runs(root) if run.status().engine_alive), None)


def enqueue(cfg: RunConfig, root: Path | None = None) -> RunFolder:
    """A new run folder that waits for its turn. Only runs put here are started by the queue: a
    folder some other tool created and never started is not run behind its back."""
    run = create_run(cfg, root)
    run.update_status(in_queue=True)
    return run


def waiting_runs(root: Path | None = None) -> list[RunFolder]:
    """Queued runs not started yet, oldest first (the order they will run in)."""
    statuses = {run: run.status() for run in list_runs(root)}
    waiting = [run for run, status in statuses.items() if status.waiting]
    return sorted(waiting, key=lambda run: (statuses[run].created or 0, run.name))


def start_next(root: Path | None = None) -> RunFolder | None:
    """Start the oldest waiting run if nothing is running; returns it, or None."""
    with _LOCK:
        if active_run(root) is not None:
            return None
        waiting = waiting_runs(root)
        if not waiting:
            return None
        try:
            proc = start_engine(waiting[0])
        except (ConfigError, OSError):  # the run is failed with the reason (start_engine); the queue goes on
            return None
    # Reap the child when it exits: an unreaped (zombie) engine still answers kill(pid, 0), so a
    # crashed run would look alive for as long as this process runs; reap also records how it ended.
    threading.Thread(target=reap, args=(waiting[0].path, proc), name=f"reap-{proc.pid}", daemon=True).start()
    return waiting[0]


def worker(serving: Callable[[], bool], root: Path, interval: float = 2.0) -> None:
    """While `serving()` holds: whenever no engine runs under `root`, start the oldest waiting run.
    The server passes its own liveness and the runs folder it serves, so a closed server's worker
    ends and never starts runs in a folder some later server (or test) points WORKBENCH_SAVES at."""
    while serving():
        try:
            start_next(root)
        except Exception as e:  # noqa: BLE001 - a bad run folder must not stop the queue
            print(f"workbench queue: {e}", flush=True)
        time.sleep(interval)


def cancel(run: RunFolder) -> bool:
    """Take a waiting run out of the queue (it never started, so there is nothing to save)."""
    now = time.time()
    status = run.update_status(only_if=lambda s: s.waiting,  # not if the queue started it meanwhile
                               state=State.CANCELLED, ended=now, error="cancelled before it started")
    return status.ended == now  # this call cancelled it
