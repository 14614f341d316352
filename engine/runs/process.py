"""Start, watch and stop the processes behind run and job folders. The CLI and the web UI only
touch folders and these subprocesses (`python -m engine.train RUN_DIR`, `python -m engine.job
JOB_DIR`), never the trainers or the models.

A folder here is anything holding a status.json (engine.runs.status): a run folder or a job folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from engine.paths import REPO_ROOT
from engine.runs.status import State, Status, is_alive, read_status, write_status


def spawn(module: str, folder: Path | os.PathLike, log_file: Path, **env: str) -> subprocess.Popen:
    """`python -m MODULE FOLDER` from the repository root, its output appended to ``log_file`` (no
    progress bars: a log is read line by line) and its pid recorded in the folder's status."""
    with open(log_file, "a", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, os.fspath(folder)], cwd=REPO_ROOT,
            env={**os.environ, "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1", **env},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal must not kill it half-saved
        )
    write_status(Path(folder), pid=proc.pid)
    return proc


def start_engine(run) -> subprocess.Popen:
    """Launch the engine on a run folder (engine.runs.folder.RunFolder); its output goes to engine.log."""
    return spawn("engine.train", run.path, run.log_file)


def stop(folder: Path | os.PathLike) -> bool:
    """Ask a folder's process to stop (SIGTERM: a training saves its adapter first). False if none runs."""
    status = read_status(Path(folder))
    if not status.state.active or not status.pid:
        return False
    try:
        os.kill(status.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def watch(folder: Path | os.PathLike, proc: subprocess.Popen | None = None,
          interval: float = 0.5) -> Iterator[Status]:
    """The folder's status every ``interval`` seconds until it is final, which is yielded last.

    A process that exited without writing a final state (killed -9, out of memory) is marked
    crashed here, so nothing stays "running" forever.
    """
    folder = Path(folder)
    while True:
        status = read_status(folder)
        yield status
        if status.state.final:
            return
        exited = proc.poll() is not None if proc else not is_alive(status.pid)
        if exited:
            status = read_status(folder)
            if not status.state.final:
                status = write_status(folder, state=State.CRASHED, ended=time.time(),
                                      error="the process exited without writing a final status; see its log")
            yield status
            return
        time.sleep(interval)


def wait(folder: Path | os.PathLike, proc: subprocess.Popen | None = None, interval: float = 0.5) -> Status:
    """The final status, once the folder's process has ended."""
    for status in watch(folder, proc, interval):
        pass
    return status
