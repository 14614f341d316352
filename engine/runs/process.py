"""Start, watch and stop the processes behind run and job folders. The CLI and the web UI only
touch folders and these subprocesses (`python -m engine.train RUN_DIR`, `python -m engine.job
JOB_DIR`), never the trainers or the models.

A folder here is anything holding a status.json (engine.runs.status): a run folder or a job folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import psutil

from engine.config import ConfigError
from engine.paths import REPO_ROOT
from engine.runs import launch, warm
from engine.runs.status import State, Status, is_alive, read_status, write_status
from engine.runs.warm import Process


def spawn(command: list[str], folder: Path | os.PathLike, log_file: Path, **env: str) -> Process:
    """``command`` (`python -m MODULE FOLDER`, or a launcher of it) from the repository root, its output
    appended to ``log_file`` (no progress bars: a log is read line by line) and its pid recorded in
    the folder's status. Warm-started where it can be (engine.runs.warm: the same process without
    its ten seconds of imports), else a subprocess."""
    full_env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1", **env}
    proc = warm.start(command, full_env, Path(log_file), REPO_ROOT)
    if proc is None:
        with open(log_file, "a", encoding="utf-8") as log:
            proc = subprocess.Popen(
                command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal must not kill it half-saved
            )
    write_status(Path(folder), pid=proc.pid)
    return proc


def start_engine(run) -> Process:
    """Launch the engine on a run folder (engine.runs.folder.RunFolder) as its distributed settings say
    (engine.runs.launch); its output goes to engine.log. A machine that cannot run the settings fails
    the run with the reason (ConfigError, raised too), so a queue never retries it."""
    try:
        cfg = run.config()  # an unreadable config fails the run here, as the engine would
        launch.check_machine(cfg)
        launch.write_launch_files(cfg, run.path)
    except (ConfigError, OSError) as e:
        write_status(run.path, state=State.FAILED, ended=time.time(), error=str(e))
        raise
    return spawn(launch.launch_command(cfg, run.path), run.path, run.log_file, **launch.launch_env(cfg))


def engine_ranks(pid: int) -> list[int]:
    """The training processes behind a recorded pid: the engine itself (`python -m engine.train`, whose
    own forked helpers are left alone) or, under `accelerate launch`, the local ranks (the launcher's
    children running engine.train)."""
    try:
        proc = psutil.Process(pid)
        if proc.cmdline()[1:3] == ["-m", launch.ENGINE_MODULE]:
            return [pid]
        children = proc.children()
    except psutil.Error:
        return [pid]
    ranks = []
    for child in children:
        try:
            if launch.ENGINE_MODULE in child.cmdline():
                ranks.append(child.pid)
        except psutil.Error:
            continue
    return ranks or [pid]


def stop(folder: Path | os.PathLike) -> bool:
    """Ask a folder's process to stop (SIGTERM: a training saves its adapter first). False if none runs.

    A distributed run's ranks are signalled themselves, not their launcher: they agree to stop at the
    same step, rank 0 saves, and the launcher then exits by itself. (Signalled, torch's launcher would
    kill its ranks 30 s later, saved or not.)"""
    status = read_status(Path(folder))
    if not status.state.active or not status.pid:
        return False
    return terminate(status.pid)


def terminate(pid: int) -> bool:
    """SIGTERM to the engine behind ``pid`` (see stop); False if it is gone."""
    sent = False
    for target in engine_ranks(pid):
        try:
            os.kill(target, signal.SIGTERM)
            sent = True
        except ProcessLookupError:
            continue
    return sent


def settle(folder: Path | os.PathLike) -> Status:
    """Record how a folder's process ended when it exited without writing a final state: failed with
    the error a distributed launcher reported (a rank killed by a signal records nothing itself), else
    crashed. A final state already written stays (write_status's rule), so any follower may call it."""
    folder = Path(folder)
    reported = launch.launcher_report(folder)
    if reported:
        return write_status(folder, state=State.FAILED, ended=time.time(), error=reported)
    return write_status(folder, state=State.CRASHED, ended=time.time(),
                        error="the process exited without writing a final status; see its log")


def reap(folder: Path | os.PathLike, proc: Process) -> Status:
    """Wait for a started process to exit (reaped: an unreaped zombie still answers kill(pid, 0)), then
    settle its folder if it left no final state. For a thread of whoever started it (the web UI's queue)."""
    proc.wait()
    status = read_status(Path(folder))
    return status if status.state.final else settle(folder)


def watch(folder: Path | os.PathLike, proc: Process | None = None,
          interval: float = 0.5) -> Iterator[Status]:
    """The folder's status every ``interval`` seconds until it is final, which is yielded last.

    A process that exited without writing a final state (killed -9, out of memory) is settled here
    (failed with its launcher's report, else crashed), so nothing stays "running" forever.
    """
    folder = Path(folder)
    while True:
        status = read_status(folder)
        yield status
        if status.state.final:
            return
        exited = proc.poll() is not None if proc else not is_alive(status.pid)
        if exited:
            yield settle(folder)
            return
        time.sleep(interval)


def wait(folder: Path | os.PathLike, proc: Process | None = None, interval: float = 0.5) -> Status:
    """The final status, once the folder's process has ended."""
    for status in watch(folder, proc, interval):
        pass
    return status
