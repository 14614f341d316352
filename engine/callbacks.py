"""The trainer callback that keeps the run folder live: metrics.jsonl, status.json, graceful stop."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import psutil
from transformers import TrainerCallback

from engine.rundir import append_metrics, write_status


class StopRequest:
    """Set by the SIGTERM handler; the callback turns it into a clean end of training."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, *_args) -> None:
        self.requested = True


STOP = StopRequest()  # one engine process trains one run, so one flag


class RunFolderCallback(TrainerCallback):
    """Writes every value the trainer logs to metrics.jsonl, verbatim, plus throughput and memory.

    TRL's metric names (``loss``, ``rewards/chosen``, ``eval_rewards/margins`` ...) are kept as they
    are, so charts and users can match them with TRL's documentation.
    """

    def __init__(self, run_dir: Path, stop: StopRequest = STOP) -> None:
        self.run_dir = Path(run_dir)
        self.stop = stop
        self.process = psutil.Process(os.getpid())
        self.start_time = time.time()
        self.last_time = self.start_time
        self.last_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_time = self.last_time = time.time()
        write_status(self.run_dir, max_steps=state.max_steps, step=state.global_step)
        control.should_training_stop = self.stop.requested

    def on_log(self, args, state, control, logs=None, **kwargs):
        now = time.time()
        record = {"step": state.global_step, "epoch": state.epoch}
        record.update(logs or {})
        tokens = state.num_input_tokens_seen or 0
        if "loss" in record and tokens > self.last_tokens and now > self.last_time:
            record["tokens_per_second"] = (tokens - self.last_tokens) / (now - self.last_time)
            self.last_tokens, self.last_time = tokens, now
        record["num_input_tokens_seen"] = tokens
        record["wall_time"] = now - self.start_time
        record["memory_rss_mb"] = self.process.memory_info().rss / 2**20
        append_metrics(self.run_dir, record)
        bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            write_status(self.run_dir, warning=f"non-finite values in {', '.join(bad)}")

    def on_step_end(self, args, state, control, **kwargs):
        write_status(self.run_dir, step=state.global_step, max_steps=state.max_steps,
                     elapsed=time.time() - self.start_time)
        if self.stop.requested:
            control.should_training_stop = True
