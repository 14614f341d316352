"""The engine process: `python -m engine.train RUN_DIR`.

Reads only RUN_DIR/config.yaml, trains the stage, and keeps status.json, metrics.jsonl and
engine.log current. SIGTERM ends training at the next step and still saves the adapter
(state "stopped"); any exception leaves state "failed" with the error text. A NaN/inf metric
(engine.runs.health) also ends training at once: state "failed", the error naming the metric and step,
and the adapter saved is the last finite one (see engine.stages.callbacks.RunFolderCallback.halt).

Under `accelerate launch` (a distributed run, engine.runs.launch) this module is each rank's process:
rank 0 keeps the run folder, the others only train, and a rank that fails writes its error
(engine.stages.ranks).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path

# Set before huggingface_hub is imported (it reads them once): models and data are local folders,
# and nothing may reach for a hub.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_var, "1")

from engine.runs.noise import silence_library_noise  # noqa: E402

silence_library_noise()  # before torch, transformers and bitsandbytes are imported

from engine.runs import checkpoints, launch  # noqa: E402
from engine.runs.folder import RunFolder  # noqa: E402
from engine.runs.status import State  # noqa: E402
from engine.stages import ranks  # noqa: E402
from engine.stages.callbacks import STOP, RunFolderCallback, TrainingDiverged  # noqa: E402
from engine.stages.samples import Sampler  # noqa: E402

log = logging.getLogger("engine")


def setup_logging(run: RunFolder) -> None:
    handler = logging.FileHandler(run.log_file, encoding="utf-8")
    where = f" [rank {ranks.rank()}]" if ranks.distributed() else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{where}: %(message)s"))
    for name in ("engine", "transformers", "trl", "peft"):
        logging.getLogger(name).addHandler(handler)
    logging.getLogger("engine").setLevel(logging.INFO)
    logging.getLogger("transformers").setLevel(logging.WARNING)


def resume_from(run: RunFolder, checkpoint: checkpoints.Checkpoint) -> None:
    """Check the checkpoint still holds everything, and rewind the run's curves to it."""
    missing = checkpoints.missing_parts(checkpoint.path)
    if missing:
        raise ValueError(f"cannot resume from {checkpoint.relative_to(run)}: it lacks {', '.join(missing)}")
    moved = checkpoints.rewind(run, checkpoint)
    log.info("resuming from %s (step %d); %d records logged after it moved to metrics/samples.undone.jsonl",
             checkpoint.relative_to(run), checkpoint.step, moved)


# How gloo and NCCL fail a collective whose peer died (killed, out of memory, its own error)
LOST_PEER = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "NCCL communicator was aborted",
             "remote process exited")


def failed(run: RunFolder, error: str) -> State:
    """Record a failure (under several ranks, naming the rank). The first failure recorded stays
    (status.json's rule), so a rank that fails after another keeps the other's error. A rank that
    fails only because a peer vanished records nothing: the peer's own error, or the launcher's report
    of how it died (engine.runs.process.settle), is the run's."""
    if ranks.distributed() and any(sign in error for sign in LOST_PEER):
        log.error("rank %d lost its connection to another rank, which failed first (the launcher's report at the "
                  "end of this log says which and how); rank %d ends too", ranks.rank(), ranks.rank())
        return State.FAILED
    if ranks.distributed():
        error = f"{ranks.rank_prefix()}{error}"
    run.update_status(state=State.FAILED, ended=time.time(), error=error)
    return State.FAILED


def started(run: RunFolder, checkpoint: checkpoints.Checkpoint | None) -> bool:
    """Mark the run running (rank 0); False when it has already ended: another rank failed before this
    one started, or the run was cancelled while its engine was being started. It then does not train."""
    if not ranks.is_main():
        return True
    begun = run.status().started if checkpoint else None  # a resumed run keeps its first start
    status = run.update_status(state=State.RUNNING, pid=ranks.launcher_pid(), started=begun or time.time(), error=None)
    if status.state == State.RUNNING:
        return True
    log.error("the run had already ended (%s: %s) when this engine started; it does not train", status.state,
              status.error)
    return False


def log_code_paths(cfg) -> None:
    """Which code paths the run takes (the speed-ups, or TRL's and PEFT's own), and every library seam
    a newer library no longer has (engine.seams: its own path runs instead)."""
    from engine import seams

    log.info(seams.describe(cfg.training.speedups))
    for problem in seams.check():
        log.warning(problem)


def run(run: RunFolder) -> State:
    """Train one run folder in this process (one rank of it) and return its final state."""
    import importlib

    checkpoint = checkpoints.resume_checkpoint(run)
    if not started(run, checkpoint):
        return run.status().state
    ranks.end_when_a_peer_fails(run)
    try:
        cfg = run.config()
        log.info("stage %s, model %s, dataset %s", cfg.stage, cfg.model.name_or_path, cfg.data.dataset)
        log_code_paths(cfg)
        if checkpoint and ranks.is_main():
            resume_from(run, checkpoint)
        stage = importlib.import_module(f"engine.stages.{cfg.stage}")  # torch, trl: after the status is written
        t = cfg.training
        callbacks = [RunFolderCallback(run, sampler=Sampler.for_run(run, cfg), save_minutes=t.save_minutes,
                                       save_on_stop=bool(t.save_steps))] if ranks.is_main() else []
        stage.run(cfg, run, ranks.with_rank_sync(callbacks, STOP))
    except TrainingDiverged as e:  # NaN weights and no finite copy: nothing saved; no traceback to read
        log.error("run failed: %s", e)
        return failed(run, str(e))
    except BaseException as e:  # noqa: BLE001 - every failure must reach status.json
        log.error("run failed:\n%s", traceback.format_exc())
        return failed(run, f"{type(e).__name__}: {e}")
    if not ranks.is_main():
        return State.STOPPED if STOP.requested else State.COMPLETED
    if STOP.reason:  # training stopped itself: NaN/inf (failed) or a degeneration alarm (stopped)
        state = State.FAILED if STOP.failed else State.STOPPED
        run.update_status(state=state, ended=time.time(), error=STOP.reason)
        log.error("run %s: %s", state, STOP.reason)
        return state
    state = State.STOPPED if STOP.requested else State.COMPLETED
    run.update_status(state=state, ended=time.time())
    log.info("run %s", state)
    return state


def exit_code(run: RunFolder, state: State) -> int:
    """0 unless the run failed; 1 for this rank's own failure, and PEER_FAILED_EXIT for a rank that ended
    because another failed first, so the launcher's report points past it to the cause."""
    if state != State.FAILED:
        return 0
    return 1 if ranks.failed_here(run.status()) else launch.PEER_FAILED_EXIT


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not (Path(argv[0]) / "config.yaml").exists():
        print("usage: python -m engine.train RUN_DIR  (a folder holding config.yaml)", file=sys.stderr)
        return 2
    folder = RunFolder(Path(argv[0]).resolve())
    setup_logging(folder)
    signal.signal(signal.SIGTERM, STOP.set)
    import torch

    # Tiny values (LoRA updates early in training, small gradients) can become denormal floats,
    # which x86 CPUs process many times slower; flushing them to zero costs no accuracy that matters.
    torch.set_flush_denormal(True)
    return exit_code(folder, run(folder))


if __name__ == "__main__":
    sys.exit(main())
