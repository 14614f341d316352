"""Following runs and jobs from a terminal: start a training and show its progress bar, health
warnings and summary (`workbench train`, the demo), or a job and print its log as it grows
(`workbench eval`, `workbench export`). Ctrl-C asks the process to stop; a training saves its
adapter first.
"""

from __future__ import annotations

import signal
import sys

from engine.config import RunConfig
from engine.runs import launch
from engine.runs.checkpoints import request_resume
from engine.runs.folder import RunFolder, create_run, pin_parent
from engine.runs.jobs import JobFolder, create_job, start_job
from engine.runs.process import start_engine, terminate, watch
from engine.runs.status import Status


def metrics_text(values: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.4g}" for k, v in values.items())


def warning_text(w: dict) -> str:
    """A health warning from status.json (engine.runs.health) as one terminal line."""
    return f"warning (step {w.get('step')}): {w.get('message')}"


def train_in_terminal(cfg: RunConfig, quiet: bool = False) -> tuple[RunFolder, Status]:
    """Create a run folder from a config, run the engine on it and show its progress."""
    launch.check_machine(cfg)  # before the folder: a refused setting leaves nothing behind
    run = create_run(pin_parent(cfg))
    print(f"run folder: {run}")
    return follow_training(run, quiet)


def resume_in_terminal(run: RunFolder, quiet: bool = False) -> tuple[RunFolder, Status]:
    """Continue a failed, stopped or crashed run from its last complete checkpoint, in its own folder."""
    max_steps = run.status().max_steps
    checkpoint = request_resume(run, in_queue=False)
    print(f"run folder: {run}\nresuming from {checkpoint.relative_to(run)} (step {checkpoint.step} of "
          f"{max_steps or '?'})")
    return follow_training(run, quiet)


def follow_training(run: RunFolder, quiet: bool = False) -> tuple[RunFolder, Status]:
    """Run the engine on a run folder and show its progress until it ends."""
    from tqdm import tqdm

    proc = start_engine(run)
    if run.accelerate_file.is_file():
        print(f"launched as: {launch.shown_command(run.config(), run.path)}")
    bar = tqdm(total=None, unit="step", disable=quiet, dynamic_ncols=True)
    warned: set[str] = set()  # health warning codes already printed
    shown = None  # (status, metric lines) as last drawn

    def forward_stop(*_args) -> None:  # Ctrl-C: let the engine save its adapter, then exit
        print("\nstopping: the engine saves the adapter first ...", file=sys.stderr)
        terminate(proc.pid)  # a distributed run's ranks, not their launcher

    previous = signal.signal(signal.SIGINT, forward_stop)
    try:
        for status in watch(run, proc):
            records = run.metrics()
            if shown == (status, len(records)):
                continue
            shown = (status, len(records))
            bar.total, bar.n = status.max_steps or bar.total, status.step
            last = next((r for r in reversed(records) if "loss" in r), {})
            bar.set_postfix_str(metrics_text(run.summary([last])))  # the stage's summary metrics, as trained
            for w in status.health_warnings(beside_error=False):
                if w.get("code") not in warned:
                    warned.add(w.get("code"))
                    tqdm.write(warning_text(w))  # above the bar, which stays intact
            bar.refresh()
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    proc.wait()
    print_summary(run, status)
    return run, status


def print_summary(run: RunFolder, status: Status) -> None:
    minutes = (status.duration() or 0) / 60
    print(f"{status.state} after {minutes:.1f} min, step {status.step}/{status.max_steps}")
    final = run.summary()
    if final:
        print(f"  final: {metrics_text(final)}")
    for w in status.health_warnings():
        print(f"  {warning_text(w)}")
    if status.error:
        print(f"  error: {status.error}  (full log: {run.log_file})")


def job_in_terminal(run: RunFolder, kind: str, settings: dict) -> tuple[JobFolder, Status]:
    """Start a job of the run (engine.runs.jobs) and print its log as it grows."""
    job = create_job(run, kind, settings)
    proc = start_job(job)
    printed = 0

    def print_new() -> int:
        lines = job.log_file.read_text(encoding="utf-8", errors="replace").splitlines() \
            if job.log_file.exists() else []
        for line in lines[printed:]:
            print(line, flush=True)
        return len(lines)

    def forward_stop(*_args) -> None:
        print("\nstopping ...", file=sys.stderr)
        proc.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, forward_stop)
    try:
        for status in watch(job, proc, interval=0.3):
            printed = print_new()
    finally:
        signal.signal(signal.SIGINT, previous)
    proc.wait()
    print_new()
    return job, status
