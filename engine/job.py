"""The job process: `python -m engine.job JOB_DIR` (engine.runs.jobs).

Reads JOB_DIR/job.yaml, does the work on the job's run (an evaluation or an export), prints its
progress (the job's log) and keeps status.json current, like the engine does for a training:
``completed`` with result.json written, ``failed`` with the error, ``stopped`` on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):  # see engine.train
    os.environ.setdefault(_var, "1")

from engine.runs.noise import silence_library_noise  # noqa: E402

silence_library_noise()  # see engine.train

from engine.config import ConfigError, EvalConfig  # noqa: E402
from engine.config.fields import build  # noqa: E402
from engine.runs.jobs import JobFolder  # noqa: E402
from engine.runs.status import State  # noqa: E402


class Stopped(Exception):
    """SIGTERM: the job ends where it is (an export cleans up its half-written folder)."""


def _stop(*_args) -> None:
    raise Stopped


def evaluation(job: JobFolder, settings: dict) -> dict:
    from engine.inference.evaluate import evaluate, format_report

    result = evaluate(job.run, build(EvalConfig, settings, "eval"), progress=lambda line: print(line, flush=True))
    print(format_report(result), flush=True)
    return result


def export(job: JobFolder, settings: dict) -> dict:
    from engine.models.export import export_note, export_run, fmt_size, folder_size

    print(f"exporting {job.run.name}: loading the base model, merging the adapter, saving ...", flush=True)
    folder = export_run(job.run, settings.get("out"))
    note = export_note(folder)  # e.g. a QLoRA adapter merged into the full-precision base
    size = folder_size(folder)
    print(f"exported to {folder} ({fmt_size(size)}): {note}", flush=True)
    return {"folder": str(folder), "size": size, "note": note}


WORK = {"eval": evaluation, "export": export}


def run(job: JobFolder) -> State:
    """Do one job in this process and return its final state."""
    job.update_status(state=State.RUNNING, pid=os.getpid(), started=time.time(), error=None)
    spec = job.spec()
    try:
        result = WORK[spec.get("kind")](job, spec.get("settings") or {})
    except Stopped:
        print("stopped", flush=True)
        job.update_status(state=State.STOPPED, ended=time.time(), error="stopped before it finished")
        return State.STOPPED
    except (ConfigError, FileNotFoundError, ValueError) as e:  # what to fix, without a traceback
        print(f"error: {e}", flush=True)
        job.update_status(state=State.FAILED, ended=time.time(), error=str(e))
        return State.FAILED
    except BaseException as e:  # noqa: BLE001 - every failure must reach status.json
        traceback.print_exc()
        job.update_status(state=State.FAILED, ended=time.time(), error=f"{type(e).__name__}: {e}")
        return State.FAILED
    job.write_result(result)
    job.update_status(state=State.COMPLETED, ended=time.time())
    return State.COMPLETED


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not (Path(argv[0]) / "job.yaml").is_file():
        print("usage: python -m engine.job JOB_DIR  (a folder holding job.yaml)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    # transformers' errors only: its loading reports would bury the job's progress lines. Set here, not
    # by TRANSFORMERS_VERBOSITY, which it reads at import (a warm start has imported it already).
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    return 0 if run(JobFolder(Path(argv[0]).resolve())) == State.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
