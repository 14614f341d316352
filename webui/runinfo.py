"""What the UI knows about runs, read from their folders on every call (never cached in memory),
so a page reload or a server restart loses nothing: the folders are the state."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from engine.config import stage_of
from engine.paths import runs_root
from engine.runs import health
from engine.runs import queue as runqueue
from engine.runs.folder import FINAL_STATES, list_runs, output_dir, raw_config, read_metrics, read_status
from engine.runs.process import engine_running, is_alive

STALE = "failed-stale"
FINISHED = ("completed", "stopped")  # runs whose saved weights are final
LOG_TAIL_LINES = 40
_TAIL_BYTES = 64 * 1024  # enough for 40 log lines; never read a whole multi-MB log every second


def run_names() -> list[str]:
    """Run folder names, newest first."""
    return [p.name for p in list_runs()]


def runs_in(states: tuple[str, ...]) -> list[tuple[Path, str]]:
    """(folder, effective state) of the runs in some (effective) states, newest first."""
    found = ((p, effective_state(read_status(p))) for p in list_runs())
    return [(path, state) for path, state in found if state in states]


def finished_runs(stages: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(label, folder name) of the runs with final weights, newest first, of the given stages (all
    when None); labels show name, stage and state."""
    found = []
    for path, state in runs_in(FINISHED):
        stage = raw_config(path).get("stage", "?")
        if output_dir(path) is not None and (stages is None or stage in stages):
            found.append((f"{path.name} · {stage} · {state}", path.name))
    return found


def labelled_runs(stages: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(label, folder) of the finished runs of some stages, newest first, labelled with their first
    held-out summary metric (a reward model's eval_accuracy), else their state: what an option that
    names a run (PPO's reward_run) and the Evaluate tab's judge are picked from."""
    runs = []
    for path, state in runs_in(FINISHED):
        stage = stage_of(raw_config(path).get("stage"))
        if stage is None or stage.name not in stages or output_dir(path) is None:
            continue
        key = next((k for k in stage.summary if k.startswith("eval_")), None)
        value = last_value(read_metrics(path), key) if key else None
        runs.append((f"{path.name} ({key.removeprefix('eval_')} {value:.2f} held out)" if value is not None
                     else f"{path.name} ({state})", path))
    return runs


def run_path(name: str) -> Path:
    """The folder of a run named in a dropdown; refuses anything that is not a run under runs_root()
    (a name is all a browser can send, and it must not reach outside saves/runs)."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise FileNotFoundError(f"no run selected ({name!r})")
    path = runs_root() / name
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(f"run {name} not found in {runs_root()}")
    return path


def effective_state(status: dict) -> str:
    """The state to show: status.json's, except that a run claiming to run whose engine process is
    gone (killed -9, out of memory, machine rebooted) is shown as failed-stale."""
    state = status.get("state", "unknown")
    if state in ("queued", "running") and status.get("pid") and not is_alive(status.get("pid")):
        return STALE
    return state


def attach_candidate() -> str | None:
    """The run the Train tab follows after a page load: the newest live run, else the newest run."""
    names = [p.name for p in list_runs()]
    live = [n for n in names if engine_running(read_status(runs_root() / n))]
    return (live or names or [None])[0]


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def duration(status: dict, now: float | None = None) -> float | None:
    """Seconds from start to end (or to now, while it runs)."""
    started = status.get("started")
    if not started:
        return None
    ended = status.get("ended") or (None if status.get("state") in FINAL_STATES else (now or time.time()))
    return (ended - started) if ended else None


def eta(status: dict) -> float | None:
    """Seconds left, from the engine's own step timing (status.json `elapsed` over `step`)."""
    step, max_steps, elapsed = status.get("step"), status.get("max_steps"), status.get("elapsed")
    if not step or not max_steps or elapsed is None or step >= max_steps:
        return None
    return elapsed / step * (max_steps - step)


def status_markdown(name: str | None) -> str:
    """The Train tab's status line for a run."""
    if not name:
        return "No run yet: set the options below and press **Start**."
    try:
        path = run_path(name)
    except FileNotFoundError as e:
        return f"**{e}**"
    status = read_status(path)
    state = effective_state(status)
    parts = [f"**{name}**", f"state: **{state}**",
             f"step {status.get('step') or 0}/{status.get('max_steps') or '?'}",
             f"time {fmt_seconds(duration(status))}"]
    if state == "running" and eta(status) is not None:
        parts.append(f"ETA {fmt_seconds(eta(status))}")
    text = " · ".join(parts)
    if state == "queued" and not status.get("pid"):
        text += f"\n\n⏳ {queue_position(path)}"
    if state == STALE:
        text += ("\n\n⚠️ status.json says the run is in progress but its engine process "
                 f"(pid {status.get('pid')}) is gone; see the log.")
    if status.get("error"):
        text += f"\n\n❌ {status['error']}"
    for w in health.status_warnings(status):  # engine.runs.health's checks, one line each
        text += f"\n\n⚠️ **step {w.get('step')}**: {w.get('message')}"
    return text


def queue_position(path: Path) -> str:
    """Where a waiting run stands in the queue, and what it waits for."""
    waiting = runqueue.waiting_runs()
    position = waiting.index(path) + 1 if path in waiting else "?"
    active = runqueue.active_run()
    behind = f"{active.name} is running" if active else "starting"
    return f"waiting in the queue, position {position}: {behind}; it starts when nothing else trains."


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a run's engine.log, reading only the file's end."""
    log = Path(path) / "engine.log"
    try:
        with open(log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _TAIL_BYTES))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def delete_run(name: str) -> str:
    """Remove a run folder; refuses a run whose engine is still alive."""
    path = run_path(name)
    status = read_status(path)
    if engine_running(status):
        raise PermissionError(f"{name} is {status.get('state')} (pid {status.get('pid')}): stop it first")
    shutil.rmtree(path)
    return f"Deleted {name}."


def last_value(records: list[dict], key: str):
    """The key's value in the last record that has it, or None."""
    return next((r[key] for r in reversed(records) if key in r), None)


def read_run(name: str) -> tuple[Path, dict, list[dict]]:
    path = run_path(name)
    return path, read_status(path), read_metrics(path)
