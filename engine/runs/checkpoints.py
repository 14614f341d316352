"""Resuming a run in its own folder from its last complete checkpoint (`workbench train --resume`,
the Train tab's Resume button).

A checkpoint is ``checkpoints/checkpoint-N/`` as transformers' Trainer writes it (the PPO stage
writes the same files): the weights, ``optimizer.pt``, ``scheduler.pt``, ``rng_state.pth`` and,
written last, ``trainer_state.json``. A folder without all of them, or whose trainer_state.json does
not parse (a disk that filled up mid-save, a kill during the save), is partial: it is skipped, and
removed when the run resumes from an older one.

Resuming rewinds the run's curves to the checkpoint: the metrics and sample answers logged after it
belong to steps the resumed run trains again, so they move to ``metrics.undone.jsonl`` and
``samples.undone.jsonl`` (kept, not deleted) and the charts go on as one continuous curve.

No torch here: the UI and the CLI call it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.files import atomic_write, read_jsonl
from engine.runs.folder import RunFolder
from engine.runs.status import STATUS_FILE, State

PREFIX = "checkpoint-"
KEPT = 2  # checkpoints kept per run, the newest (the Trainer's save_total_limit; PPO's own loop alike)
STATE_FILE = "trainer_state.json"
NEEDED = ("optimizer.pt", "scheduler.pt", STATE_FILE)
WEIGHTS = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json")
RESUMABLE = (State.FAILED, State.STOPPED, State.CRASHED, State.UNKNOWN)


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int

    def relative_to(self, run: RunFolder) -> str:
        return str(self.path.relative_to(run.path))


def checkpoint_step(path: Path) -> int | None:
    number = path.name.removeprefix(PREFIX)
    return int(number) if path.name.startswith(PREFIX) and number.isdigit() else None


def missing_parts(path: Path) -> list[str]:
    """What a checkpoint folder lacks to resume from ([] when it is complete)."""
    missing = [name for name in NEEDED if not (path / name).is_file()]
    if not any((path / name).is_file() for name in WEIGHTS):
        missing.append("the weights (" + " or ".join(WEIGHTS[:2]) + ")")
    if STATE_FILE not in missing:
        try:
            state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
            if state.get("global_step") != checkpoint_step(path):
                missing.append(f"{STATE_FILE} for step {checkpoint_step(path)}")
        except (OSError, ValueError, AttributeError):
            missing.append(f"a readable {STATE_FILE}")
    return missing


def all_checkpoints(run: RunFolder) -> list[Checkpoint]:
    """Every checkpoint-N folder of the run, complete or not, oldest first."""
    if not run.checkpoints_dir.is_dir():
        return []
    found = [Checkpoint(p, step) for p in run.checkpoints_dir.iterdir()
             if p.is_dir() and (step := checkpoint_step(p)) is not None]
    return sorted(found, key=lambda c: c.step)


def resume_checkpoint(run: RunFolder) -> Checkpoint | None:
    """The checkpoint status.json tells the engine to continue from; None for a fresh start."""
    relative = run.status().resume_from
    if not relative:
        return None
    path = run.path / relative
    return Checkpoint(path, checkpoint_step(path) or 0)


def last_complete(run: RunFolder) -> Checkpoint | None:
    return next((c for c in reversed(all_checkpoints(run)) if not missing_parts(c.path)), None)


def partial_after(run: RunFolder, step: int) -> list[Checkpoint]:
    """The incomplete checkpoints newer than ``step``: the resumed run would save over them."""
    return [c for c in all_checkpoints(run) if c.step > step and missing_parts(c.path)]


def resume_problem(run: RunFolder) -> str | None:
    """Why the run cannot be resumed now, in words; None when it can."""
    status = run.status()
    if status.engine_alive:
        return f"{run.name} is still running (pid {status.pid}): stop it first, or let it finish"
    if status.waiting or status.state == State.QUEUED and not status.pid:
        return f"{run.name} is already waiting in the queue"
    if status.shown not in RESUMABLE:
        return f"{run.name} is {status.label}: only a failed, stopped or crashed run is resumed"
    if last_complete(run) is None:
        partial = [c.path.name for c in all_checkpoints(run)]
        found = f" ({', '.join(partial)} incomplete)" if partial else ""
        return (f"{run.name} saved no complete checkpoint before it ended{found}, so there is nothing to resume "
                "from: start it again (Load settings → from a run's config.yaml) with training.save_minutes or "
                "training.save_steps set")
    return None


def request_resume(run: RunFolder, in_queue: bool) -> Checkpoint:
    """Mark a failed, stopped or crashed run to continue from its last complete checkpoint: status
    queued, ``resume_from`` naming the checkpoint (the engine reads it). ``in_queue``: the web UI's
    queue starts it; else the caller starts the engine. ValueError says why it cannot."""
    problem = resume_problem(run)
    if problem:
        raise ValueError(problem)
    checkpoint = last_complete(run)
    status_file = run.path / STATUS_FILE
    if run.status().state == State.UNKNOWN and status_file.exists():  # unreadable: kept beside, then replaced
        shutil.copyfile(status_file, run.path / f"{STATUS_FILE}.unreadable")
        status_file.unlink()
    status = run.update_status(reopen=True, only_if=lambda s: s.shown in RESUMABLE,  # the one write that reopens
                               state=State.QUEUED, in_queue=in_queue, pid=None, ended=None, error=None,
                               resume_from=checkpoint.relative_to(run), step=checkpoint.step)
    if status.state != State.QUEUED:
        raise ValueError(f"{run.name} is {status.label} now: only a failed, stopped or crashed run is resumed")
    return checkpoint


def rewind(run: RunFolder, checkpoint: Checkpoint) -> int:
    """Before training resumes: records logged after the checkpoint's step move from metrics.jsonl and
    samples.jsonl to *.undone.jsonl, and partial checkpoints after it are removed. Returns the
    number of records moved."""
    moved = 0
    for live in (run.metrics_file, run.samples_file):
        records = read_jsonl(live)
        kept = [r for r in records if not _after(r, checkpoint.step)]
        undone = [r for r in records if _after(r, checkpoint.step)]
        if undone:
            with open(live.with_suffix(".undone.jsonl"), "a", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in undone)
            atomic_write(live, "".join(json.dumps(r) + "\n" for r in kept))
            moved += len(undone)
    for partial in partial_after(run, checkpoint.step):
        shutil.rmtree(partial.path, ignore_errors=True)
    return moved


def _after(record: dict, step: int) -> bool:
    value = record.get("step")
    return isinstance(value, (int, float)) and value > step
