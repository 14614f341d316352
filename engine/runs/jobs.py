"""Jobs: the long tasks done on a finished run besides training, evaluation and export, each in a
folder of its own inside the run folder, run by its own process like a training:

    <run folder>/jobs/<timestamp>-<kind>/
        job.yaml      what to do: kind and settings (an EvalConfig, an export's destination)
        status.json   engine.runs.status.Status, written by the job's process
        job.log       its output, progress lines included
        result.json   what it produced (an evaluation's results; an export's folder)

`python -m engine.job JOB_DIR` (engine.job) does the work; the CLI and the web UI create the folder,
start the process and read the files back, so a page reload or a server restart finds a job again
and a finished job's results stay with its run.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from engine.files import atomic_write, read_yaml_mapping
from engine.runs.folder import RunFolder
from engine.runs.process import spawn
from engine.runs.status import ProcessFolder, State
from engine.runs.warm import Process

KINDS = ("eval", "export")


@dataclass(frozen=True)
class JobFolder(ProcessFolder):
    spec_file = property(lambda self: self.path / "job.yaml")
    log_file = property(lambda self: self.path / "job.log")
    result_file = property(lambda self: self.path / "result.json")

    @property
    def run(self) -> RunFolder:
        return RunFolder(self.path.parent.parent)

    def spec(self) -> dict[str, Any]:
        return read_yaml_mapping(self.spec_file)

    @property
    def kind(self) -> str | None:
        return self.spec().get("kind")

    def result(self) -> dict | None:
        """result.json, or None while there is none (or an unreadable one)."""
        try:
            data = json.loads(self.result_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_result(self, result: dict) -> None:
        atomic_write(self.result_file, json.dumps(result, indent=1))

    def last_line(self) -> str:
        """The job's latest progress line."""
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return next((line.strip() for line in reversed(lines) if line.strip()), "")


def create_job(run: RunFolder, kind: str, settings: dict[str, Any]) -> JobFolder:
    """A new job folder in the run's jobs/, queued, holding what to do."""
    if kind not in KINDS:
        raise ValueError(f"job kind {kind!r}: one of {', '.join(KINDS)}")
    run.jobs_dir.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = run.jobs_dir / f"{stamp}-{kind}", 1
    while path.exists():
        n += 1
        path = run.jobs_dir / f"{stamp}-{kind}-{n}"
    path.mkdir()
    job = JobFolder(path)
    job.spec_file.write_text(yaml.safe_dump({"kind": kind, "settings": settings}, sort_keys=False), encoding="utf-8")
    job.update_status(state=State.QUEUED, created=time.time())
    return job


def list_jobs(run: RunFolder, kind: str | None = None) -> list[JobFolder]:
    """The run's jobs (of one kind), newest first."""
    if not run.jobs_dir.is_dir():
        return []
    jobs = [JobFolder(p) for p in sorted(run.jobs_dir.iterdir(), reverse=True) if (p / "job.yaml").is_file()]
    return [job for job in jobs if kind is None or job.kind == kind]


def start_job(job: JobFolder) -> Process:
    """`python -m engine.job JOB_DIR`, its output (the job's progress lines) in job.log."""
    return spawn([sys.executable, "-m", "engine.job", str(job.path)], job.path, job.log_file)
