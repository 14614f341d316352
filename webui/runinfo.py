"""What the tabs list about runs, read from their folders on every call (never cached in memory),
so a page reload or a server restart loses nothing: the folders are the state."""

from __future__ import annotations

import shutil

from engine.config import stage_of
from engine.runs.folder import RunFolder, list_runs, resolve_run
from engine.runs.jobs import JobFolder, list_jobs
from engine.runs.status import FINISHED, State


def run_names() -> list[str]:
    """Run folder names, newest first."""
    return [run.name for run in list_runs()]


def run_path(name: str | None) -> RunFolder:
    """The run folder a dropdown names; a browser can send anything, so only the exact name of a
    folder under the runs folder is accepted (FileNotFoundError otherwise)."""
    return resolve_run(name or "", names_only=True)


def runs_in(states: tuple[State, ...]) -> list[tuple[RunFolder, State]]:
    """(folder, shown state) of the runs in some states, newest first."""
    found = ((run, run.status().shown) for run in list_runs())
    return [(run, state) for run, state in found if state in states]


def finished_runs(stages: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(label, folder name) of the runs with final weights, newest first, of the given stages (all
    when None); labels show name, stage and state."""
    found = []
    for run, state in runs_in(FINISHED):
        if run.weights() is not None and (stages is None or run.stage in stages):
            found.append((f"{run.name} · {run.stage or '?'} · {state}", run.name))
    return found


def labelled_runs(stages: tuple[str, ...]) -> list[tuple[str, RunFolder]]:
    """(label, folder) of the finished runs of some stages, newest first, labelled with their first
    held-out summary metric (a reward model's eval_accuracy), else their state: what an option that
    names a run (PPO's reward_run) and the Evaluate tab's judge are picked from."""
    runs = []
    for run, state in runs_in(FINISHED):
        stage = stage_of(run.stage)
        if stage is None or stage.name not in stages or run.weights() is None:
            continue
        held_out = next(((k, v) for k, v in run.summary().items() if k.startswith("eval_")), None)
        runs.append((f"{run.name} ({held_out[0].removeprefix('eval_')} {held_out[1]:.2f} held out)" if held_out
                     else f"{run.name} ({state})", run))
    return runs


def attach_candidate() -> str | None:
    """The run the Train tab follows after a page load: the newest live run, else the newest run."""
    runs = list_runs()
    live = [run.name for run in runs if run.status().engine_alive]
    return (live or [run.name for run in runs] or [None])[0]


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def fmt_metrics(values: dict[str, float]) -> str:
    """Final metrics for a table cell: 'loss 0.41 · eval_loss 0.48'."""
    return " · ".join(f"{k} {v:.4g}" for k, v in values.items())


def latest_job(name: str | None, kind: str) -> JobFolder | None:
    """The newest job of a kind (eval, export) of the run a dropdown names, if any."""
    try:
        return next(iter(list_jobs(run_path(name), kind)), None)
    except FileNotFoundError:
        return None


def job_running(job: JobFolder | None) -> bool:
    return job is not None and job.status().engine_alive


def pick_run(names: list[str], kept: str | None, kind: str) -> str | None:
    """The run a job tab shows after a (re)load: the one kept, else one whose job of that kind is
    running (so a reload or a server restart follows it again), else the newest."""
    if kept in names:
        return kept
    busy = next((name for name in names if job_running(latest_job(name, kind))), None)
    return busy or (names[0] if names else None)


def delete_run(name: str) -> str:
    """Remove a run folder; refuses a run whose engine (or one of its jobs) is still alive."""
    run = run_path(name)
    status = run.status()
    if status.engine_alive:
        raise PermissionError(f"{name} is {status.state} (pid {status.pid}): stop it first")
    busy = next((job for job in list_jobs(run) if job.status().engine_alive), None)
    if busy is not None:
        raise PermissionError(f"{name} has a {busy.kind} job running ({busy.name}): wait for it first")
    shutil.rmtree(run.path)
    return f"Deleted {name}."
