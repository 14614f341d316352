"""The engine as one of several processes (a distributed run, engine.runs.launch).

Every rank trains; rank 0 alone writes the run folder (status, metrics, samples, weights, caches), and
a failing rank writes its own error. The ranks must take every decision together: a Stop that reaches
one rank first, rank 0's stop on NaN or on an alarm, rank 0's time to save a checkpoint. A rank that
decided alone would leave the others waiting forever in the next step's gradient exchange, so the
RankSync callbacks around the run-folder callback make any rank's decision everyone's.
"""

from __future__ import annotations

import os

from transformers import TrainerCallback

# torchrun (under `accelerate launch`) tells each process its place in these variables
rank = int(os.environ.get("RANK", "0"))
world_size = int(os.environ.get("WORLD_SIZE", "1"))
is_main = rank == 0
distributed = world_size > 1


def launcher_pid() -> int:
    """The pid status.json records for the run: the launcher's, for a distributed run (its exit ends
    the run: engine.runs.process.watch), else this process."""
    return os.getppid() if distributed else os.getpid()


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
    if not distributed:
        return callbacks
    return [RankSync(stop), *(callbacks if is_main else []), RankSyncAfter(stop)]

