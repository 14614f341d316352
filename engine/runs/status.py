"""status.json: where a run (or a job) stands, typed, and the one rule for whether its process lives.

The engine writes it (atomically); the CLI and the web UI only read it. A process that died without
writing a final state (killed -9, out of memory, the machine rebooted) leaves an active state
behind; readers see it as ``crashed``, the one word for that in the UI and the CLI, and whoever
notices first (a follower, the queue) writes it down (engine.runs.process.settle).

Several processes write one status.json: the engine (every rank of a distributed run may record its
own failure), the process that started it (the pid), a follower or the queue (crashed), the queue's
Cancel, a resume. So every write is a read-modify-write under an exclusive lock on the folder, and
one rule says who wins (``write_status``): **a final state is final**. Once a run is completed,
failed, stopped or cancelled, no later write changes its state, error or end time (the first
failure's error stays; a rank that starts late cannot turn ``failed`` back into ``running``), except
a deliberate ``reopen`` (a resume). ``crashed`` is final too, but may still become ``failed`` when the
error is learnt afterwards (a distributed launcher's report).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import psutil

from engine.files import atomic_write

STATUS_FILE = "status.json"


class State(str, Enum):
    QUEUED = "queued"        # written, not started (or starting)
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"        # an error ended it; the error says which
    STOPPED = "stopped"      # a user stopped it; what it saved is kept
    CANCELLED = "cancelled"  # taken out of the queue before it started
    CRASHED = "crashed"      # its process vanished without a final state
    UNKNOWN = "unknown"      # no status.json, or an unreadable one

    def __str__(self) -> str:
        return self.value

    @property
    def active(self) -> bool:
        return self in (State.QUEUED, State.RUNNING)

    @property
    def final(self) -> bool:
        return self in (State.COMPLETED, State.FAILED, State.STOPPED, State.CANCELLED, State.CRASHED)


FINISHED = (State.COMPLETED, State.STOPPED)  # ended on purpose: the weights saved are final
OUTCOME = ("state", "error", "ended")  # the fields that say how a run ended: a final state keeps them


def is_alive(pid: int | None) -> bool:
    """The process exists and is not a zombie: a killed engine whose parent died too (the CLI that
    started it) can stay a zombie for as long as nothing reaps it, and answers kill(pid, 0) all along."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone in between, or not ours to inspect
        return psutil.pid_exists(pid)


NUMBER, OPTIONAL = (int, float), type(None)
# The type each status.json field must have; a file that breaks one is unreadable, like one that is not
# JSON: a hand edit or another program's {"pid": "12"} must not take every listing down.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "state": (str,), "pid": (int, OPTIONAL), "in_queue": (bool,), "created": (*NUMBER, OPTIONAL),
    "started": (*NUMBER, OPTIONAL), "ended": (*NUMBER, OPTIONAL), "step": (int,), "max_steps": (int, OPTIONAL),
    "elapsed": (*NUMBER, OPTIONAL), "error": (str, OPTIONAL), "resume_from": (str, OPTIONAL), "warnings": (list,)}


def wrong_field(data: dict) -> str | None:
    """The first field of a status mapping whose value has the wrong type, in words; None if all fit."""
    for key, types in FIELD_TYPES.items():
        value = data.get(key)
        if key in data and (not isinstance(value, types) or isinstance(value, bool) and bool not in types):
            return f"{key} is {value!r}, which is not a {' or '.join(t.__name__ for t in types)}"
    return None


@dataclass
class Status:
    state: State = State.UNKNOWN
    pid: int | None = None
    in_queue: bool = False  # waits for the web UI's queue (engine.runs.queue) to start it
    created: float | None = None
    started: float | None = None
    ended: float | None = None
    step: int = 0
    max_steps: int | None = None
    elapsed: float | None = None  # seconds of training so far, written at each step (the ETA's base)
    error: str | None = None
    resume_from: str | None = None  # the checkpoint (relative to the run folder) the engine continues from
    warnings: list[dict] = field(default_factory=list)  # engine.runs.health's, as {"code", "message", "step"}
    activity: str | None = None  # what the engine does between training steps (answering the sample prompts)
    next_check: int | None = None  # the step of the next check of the sample answers (engine.stages.samples)
    clean_step: int | None = None  # the step whose weights clean_adapter/ holds (engine.runs.folder.swap_weights)
    weights_step: int | None = None  # the step whose weights adapter/ holds, when not the end's
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other versions, kept as they are

    @classmethod
    def from_dict(cls, data: dict) -> Status:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        try:
            known["state"] = State(known.get("state", State.UNKNOWN))
        except ValueError:
            known["state"] = State.UNKNOWN
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**data, "state": self.state.value, **self.extra}

    @property
    def engine_alive(self) -> bool:
        """Its process runs (an active state alone can be stale after a kill -9)."""
        return self.state.active and is_alive(self.pid)

    @property
    def shown(self) -> State:
        """The state to show: status.json's, except that an active one whose process is gone is crashed."""
        return State.CRASHED if self.state.active and self.pid and not is_alive(self.pid) else self.state

    @property
    def label(self) -> str:
        """The state in words for listings: an unreadable status.json says so (its error names it)."""
        return f"unreadable: {STATUS_FILE}" if self.state == State.UNKNOWN and self.error else str(self.shown)

    @property
    def waiting(self) -> bool:
        """Queued for the web UI's queue and not started yet."""
        return self.state == State.QUEUED and self.in_queue and not self.pid

    def duration(self, now: float | None = None) -> float | None:
        """Seconds from start to end (or to now, while it runs)."""
        if not self.started:
            return None
        ended = self.ended or (None if self.state.final else (now or time.time()))
        return ended - self.started if ended else None

    def eta(self) -> float | None:
        """Seconds left, from the engine's own step timing (elapsed over step)."""
        if not self.step or not self.max_steps or self.elapsed is None or self.step >= self.max_steps:
            return None
        return self.elapsed / self.step * (self.max_steps - self.step)

    def health_warnings(self, beside_error: bool = True) -> list[dict]:
        """The health warnings that hold; ``beside_error`` leaves out any the error already says in full
        (a NaN stop repeats its warning in the error). Old runs had one ``warning`` string instead."""
        error = (self.error or "") if beside_error else ""
        found = [w for w in self.warnings if isinstance(w, dict) and not (error and w.get("message") in error)]
        if isinstance(self.extra.get("warning"), str):
            found.append({"code": "warning", "message": self.extra["warning"], "step": self.step})
        return found


@dataclass(frozen=True)
class ProcessFolder:
    """A folder whose process keeps a status.json in it: a run folder or a job folder."""

    path: Path

    status_file = property(lambda self: self.path / STATUS_FILE)

    @property
    def name(self) -> str:
        return self.path.name

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def status(self) -> Status:
        return read_status(self.path)

    def update_status(self, **changes: Any) -> Status:
        """write_status on this folder (its rule: a final state is final)."""
        return write_status(self.path, **changes)


def read_status(folder: Path) -> Status:
    """A folder's status.json; state unknown when it has none, or one that is not valid JSON (then
    the error names the file, and nothing else breaks: listings still show the run)."""
    path = Path(folder) / STATUS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Status()
    except (OSError, ValueError) as e:  # ValueError: invalid JSON or not UTF-8
        return Status(error=f"{path} is unreadable ({e}); the run's other files are intact")
    if not isinstance(data, dict):
        return Status(error=f"{path} does not hold an object")
    wrong = wrong_field(data)
    if wrong:
        return Status(error=f"{path} is unreadable ({wrong}); the run's other files are intact")
    return Status.from_dict(data)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder (flock on its directory: no lock file to list or leave behind)
    for one read-modify-write of its status.json. Not re-entrant: hold it for one write only."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def allowed(status: Status, changes: dict[str, Any], reopen: bool) -> dict[str, Any]:
    """The changes the rule lets through (see the module's docstring): all of them while the state is
    active, or for a reopen. Once final, a write that would change the state is about a run that has
    already ended and is dropped whole (a late rank's "running" with its start time); other writes lose
    their outcome fields. Crashed alone may still become failed, once its error is known."""
    if reopen or status.state.active or status.state == State.UNKNOWN:
        return changes
    state = State(changes.get("state", status.state))
    if status.state == State.CRASHED and state in (State.FAILED, State.CRASHED):
        return changes
    if state != status.state:
        return {}
    return {key: value for key, value in changes.items() if key not in OUTCOME}


def write_status(folder: Path, *, reopen: bool = False, only_if: Callable[[Status], bool] | None = None,
                 **changes: Any) -> Status:
    """Merge changes (Status field names) into status.json atomically, under the folder's lock, as far
    as the rule allows (a final state is final; ``reopen`` lifts it, for a resume); ``only_if``: only
    when the status read under the lock satisfies it (a check and a write no other process can come
    between). Returns the status as written, which says whether a change was dropped."""
    for key in changes:
        if key == "extra" or key not in Status.__dataclass_fields__:
            raise TypeError(f"status.json has no field {key!r}")
    folder = Path(folder)
    with locked(folder):
        status = read_status(folder)
        if only_if is not None and not only_if(status):
            return status
        applied = allowed(status, changes, reopen)
        if not applied:
            return status
        for key, value in applied.items():
            setattr(status, key, State(value) if key == "state" else value)
        atomic_write(folder / STATUS_FILE, json.dumps(status.to_dict(), indent=1))
    return status
