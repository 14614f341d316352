"""Warm starts: the engine and job processes without their ten seconds of imports.

`python -m engine.train RUN_DIR` spends ~10 s of CPU importing torch, transformers, PEFT and TRL before
it reads its config (measured on 2-core EPYCs; a tiny run then trains in 1-3 s). So whoever starts
engines (the web UI's server, the CLI, the tests) keeps one *warm* interpreter that has imported them
once and forks a child per start. The child is the same program as a cold start: it sets the
requested environment, runs the module as __main__ with the run folder as its argument, writes to the
same log, has a session of its own and outlives the server; its pid, signals and exit code work as a
subprocess's do (``WarmProcess`` answers as ``subprocess.Popen`` for what the callers use).

There is one warm interpreter per environment, the workbench's own WORKBENCH_* variables aside (the
engine reads those when it runs, never at import; a PYTHONPATH or TRANSFORMERS_VERBOSITY is read at
import, so it gets an interpreter of its own). A start goes cold (a plain subprocess), as before, for
another command (a distributed launcher), on a machine with a GPU driver (CUDA must not be set up
before a fork), or with ``WORKBENCH_WARM_START=0``.

The protocol is JSON lines: the owner writes {"id", "module", "args", "env", "log", "cwd"} to the warm
interpreter's stdin; it answers {"ready"} once, {"id", "pid"} per start and {"exited", "code"} when a
child ends. It exits when its stdin closes (its owner ended); running children carry on.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine.runs.status import is_alive

WARM_ENV = "WORKBENCH_WARM_START"
WARM_MODULES = ("engine.train", "engine.job")
# What the warm interpreter imports once: everything a run or a job would import first.
PRELOAD = ("engine.train", "engine.job", "engine.stages.sft", "engine.stages.dpo", "engine.stages.rm",
           "engine.stages.ppo", "engine.inference.evaluate")
GPU_DEVICES = ("/dev/nvidiactl", "/dev/kfd")
OWN_PREFIX = "WORKBENCH_"
READY_TIMEOUT = 300  # s: the imports take ~10 s; a machine under heavy load may take several times that


def comparable(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith(OWN_PREFIX)}


class WarmProcess:
    """A child of the warm interpreter, as the callers use a subprocess.Popen: pid, poll, wait,
    returncode, send_signal, terminate, kill."""

    def __init__(self, pid: int, warm: "WarmInterpreter"):
        self.pid, self._warm = pid, warm

    @property
    def returncode(self) -> int | None:
        return self._warm.exit_code(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self._warm.wait_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"warm-started pid {self.pid}", timeout)
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmInterpreter:
    """The owner's side: starts the warm interpreter, sends it starts, and reads its answers."""

    def __init__(self, env: dict[str, str], cwd: Path):
        # stderr stays its owner's: a failed import shows there (and the starts then go cold)
        self._proc = subprocess.Popen([sys.executable, "-m", __name__], env=env, cwd=cwd, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, start_new_session=True)
        self._changed = threading.Condition()
        self._ready = False
        self._pids: dict[int, int] = {}  # request id -> pid, until start() takes it
        self._started: list[int] = []
        self._exits: dict[int, int] = {}  # pid -> exit code
        self._next_id = 0
        threading.Thread(target=self._read, name="warm-start-reader", daemon=True).start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:  # not an answer (a sitecustomize's print before the answers were set up)
                continue
            with self._changed:
                if "ready" in message:
                    self._ready = True
                elif "exited" in message:
                    self._exits[message["exited"]] = message["code"]
                else:
                    self._pids[message["id"]] = message["pid"]
                self._changed.notify_all()
        with self._changed:  # gone: nothing more will come
            self._changed.notify_all()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def idle(self) -> bool:
        """No child of it runs (or it has ended)."""
        with self._changed:
            return not self.alive() or set(self._started) <= set(self._exits)

    def close(self) -> None:
        """End it (an idle one: a running child would lose the report of its exit code)."""
        try:
            self._proc.stdin.close()
        except OSError:  # already gone
            pass

    def start(self, module: str, args: list[str], env: dict[str, str], log: Path, cwd: Path) -> WarmProcess | None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._ready or not self.alive(), READY_TIMEOUT) or not self.alive():
                return None
            self._next_id += 1
            request = {"id": self._next_id, "module": module, "args": args, "env": env, "log": str(log),
                       "cwd": str(cwd)}
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            self._proc.stdin.flush()
            self._changed.wait_for(lambda: request["id"] in self._pids or not self.alive(), 60)
            pid = self._pids.pop(request["id"], None)
            self._started += [pid] if pid else []
        return WarmProcess(pid, self) if pid else None

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            if pid in self._exits:
                return self._exits[pid]
        if self.alive():
            return None
        return None if is_alive(pid) else 1  # the warm interpreter is gone: no code will come

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or not self.alive(), timeout)
        while (code := self.exit_code(pid)) is None and timeout is None:
            time.sleep(0.5)  # the warm interpreter went before the child: poll until the child goes too
        return code


Process = subprocess.Popen | WarmProcess  # what a start returns

_warm: dict[frozenset, WarmInterpreter] = {}  # one per environment (a server has one; tests vary theirs)
_lock = threading.Lock()


def usable(command: list[str]) -> tuple[str, list[str]] | None:
    """(module, args) when the command can be warm-started on this machine, else None."""
    if os.environ.get(WARM_ENV, "1") == "0" or any(os.path.exists(d) for d in GPU_DEVICES):
        return None
    if len(command) < 3 or command[0] != sys.executable or command[1] != "-m" or command[2] not in WARM_MODULES:
        return None
    return command[2], command[3:]


def interpreter(env: dict[str, str], cwd: Path) -> WarmInterpreter:
    """The warm interpreter for this environment; starting one closes those with no child running
    (a user's server never changes its environment; a test that sets its own starts its own)."""
    key = frozenset(comparable(env).items())
    with _lock:
        if key not in _warm or not _warm[key].alive():
            for other in [k for k, w in _warm.items() if w.idle()]:
                _warm.pop(other).close()
            _warm[key] = WarmInterpreter(env, cwd)
        return _warm[key]


def start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> WarmProcess | None:
    """Warm-start ``command`` (see the module's docstring), or None: start it cold."""
    target = usable(command)
    return interpreter(env, cwd).start(*target, env, log, cwd) if target else None


# ---- the warm interpreter itself: `python -m engine.runs.warm` ----

def _child(request: dict) -> None:
    """In the forked child: become the requested process, run it, exit with its code."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    code = 1
    try:
        import runpy

        sys.argv = [request["module"], *request["args"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - as an uncaught exception ends a cold process
        import traceback

        traceback.print_exc()
    finally:
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve() -> None:
    import importlib

    report_fd = os.dup(1)  # the answers; a library's print during the imports must not reach them
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def report(message: dict) -> None:
        os.write(report_fd, (json.dumps(message) + "\n").encode())

    for module in PRELOAD:
        importlib.import_module(module)
    report({"ready": True})
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.2)
        while True:  # reap the children that ended
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
            report({"exited": pid, "code": os.waitstatus_to_exitcode(status)})
        if not readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return  # the owner is gone; running children carry on
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(report_fd)
                    _child(request)
                finally:  # whatever happens, the child never goes back to serving
                    os._exit(1)
            report({"id": request["id"], "pid": pid})


if __name__ == "__main__":
    _serve()
