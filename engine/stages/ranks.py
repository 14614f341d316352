"""The engine as one of several processes (a distributed run, engine.runs.launch).

Every rank trains; rank 0 alone writes the run folder (status, metrics, samples, weights, caches), and
a failing rank writes its own error. The ranks must take every decision together: a Stop that reaches
one rank first, rank 0's stop on NaN or on an alarm, rank 0's time to save a checkpoint. A rank that
decided alone would leave the others waiting forever in the next step's gradient exchange, so the
RankSync callbacks around the run-folder callback make any rank's decision everyone's.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

from transformers import TrainerCallback

from engine.runs.launch import PEER_FAILED_EXIT
from engine.runs.status import State

# torchrun (under `accelerate launch`) tells each process its place in RANK and WORLD_SIZE: read when
# asked, not at import, so whatever sets them (a launcher, a test) need not come before the import.


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Rank 0, the one that writes the run folder (a process of its own is rank 0)."""
    return rank() == 0


def distributed() -> bool:
    return world_size() > 1


def rank_prefix() -> str:
    """How this rank's errors begin in status.json: "rank 1 of 2: ..."."""
    return f"rank {rank()} of {world_size()}: "


RANK_ERROR = re.compile(r"rank (\d+) of \d+: ")


def recorded_by(status) -> int | None:
    """The rank whose failure a failed status records, None if it names none (one process, or rank 0's
    own decision to stop, on NaN)."""
    found = RANK_ERROR.match(status.error or "") if status.state == State.FAILED else None
    return int(found[1]) if found else None


def failed_here(status) -> bool:
    """This process's own failure is the run's (not another rank's, nor a lost peer recorded by no one)."""
    if not distributed():
        return True
    by = recorded_by(status)
    return by == rank() if by is not None else is_main() and status.state == State.FAILED


def end_when_a_peer_fails(run, poll: float = 0.5) -> None:
    """Under several ranks, a daemon thread that ends this process as soon as another rank has recorded
    its failure in status.json. This rank could only wait for it in the next collective (joining the
    process group, a gradient exchange), where a signal cannot reach Python, until the launcher kills it
    30 s after the failure."""
    if not distributed():
        return

    def watch() -> None:
        while True:
            time.sleep(poll)
            status = run.status()
            if recorded_by(status) not in (None, rank()):
                logging.getLogger("engine").error("rank %d ends: %s", rank(), status.error)
                logging.shutdown()  # flush engine.log: os._exit skips it
                os._exit(PEER_FAILED_EXIT)

    threading.Thread(target=watch, name="peer-failure", daemon=True).start()


def launcher_pid() -> int:
    """The pid status.json records for the run: the launcher's, for a distributed run (its exit ends
    the run: engine.runs.process.watch), else this process."""
    return os.getppid() if distributed() else os.getpid()


class RankSync(TrainerCallback):
    """After each step, each log and at the start, all ranks agree on stopping and saving: a flag set on
    any rank is set on all. Rank 0 puts one before and one after its RunFolderCallback, every other rank
    two in a row, so the ranks make the same collective calls in the same order."""

    def __init__(self, stop) -> None:
        self.stop = stop

    def agree(self, control) -> None:
        import torch
        import torch.distributed as dist

        flags = torch.tensor([self.stop.requested, control.should_training_stop, control.should_save],
                             dtype=torch.int32)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        requested, should_stop, should_save = (bool(f) for f in flags.tolist())
        if requested and not self.stop.requested:
            self.stop.set()  # another rank was asked to stop (or stopped itself: rank 0 knows why)
        control.should_training_stop = should_stop or requested
        control.should_save = should_save

    def on_train_begin(self, args, state, control, **kwargs):
        self.agree(control)

    def on_step_end(self, args, state, control, **kwargs):
        self.agree(control)

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.agree(control)


class RankSyncAfter(RankSync):
    """The second agreement, after rank 0's callback has acted (its own class: transformers warns of a
    callback class added twice)."""


def with_rank_sync(callbacks: list, stop) -> list:
    """The callbacks of this rank: rank 0's between two agreements; another rank's (none) replaced by two."""
    if not distributed():
        return callbacks
    return [RankSync(stop), *(callbacks if is_main() else []), RankSyncAfter(stop)]

