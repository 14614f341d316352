"""What one training run is measured by, the same way for every system.

Real tokens are counted from the batches the trainer actually steps on (their attention masks), not
from the trainer's own counter: the workbench counts padding too (``include_num_input_tokens_seen``),
and a system that packs or drops padding must still show the same real tokens as the other. Time is
the training loop plus any reference-model precompute done before it (that is work a DPO run
cannot skip, only move). Memory is the process's peak RSS (each run has a process of its own) and,
on a GPU, torch's peak allocation.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time

from transformers import TrainerCallback

FINAL_METRICS = ("loss", "rewards/accuracies", "rewards/margins")


class Meter(TrainerCallback):
    """Step end times, the training loop's start and end, and the tokens of each stepped batch."""

    def __init__(self) -> None:
        self.train_start: float | None = None
        self.train_end: float | None = None
        self.step_ends: list[float] = []
        self.real_tokens = 0
        self.padded_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.train_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_ends.append(time.perf_counter())

    def on_train_end(self, args, state, control, **kwargs):
        self.train_end = time.perf_counter()

    def count(self, inputs: dict) -> None:
        ids, mask = inputs.get("input_ids"), inputs.get("attention_mask")
        # no mask: a padding-free batch (one packed row), where every position is a real token
        real = int(mask.sum()) if mask is not None else int(ids.numel())
        self.real_tokens += real
        self.padded_tokens += int(ids.numel()) if ids is not None else real

    def watch(self, trainer) -> None:
        """Count the tokens of every batch the trainer steps on (gradient accumulation included)."""
        step = trainer.training_step

        def counted(model, inputs, *args, **kwargs):
            self.count(inputs)
            return step(model, inputs, *args, **kwargs)

        trainer.training_step = counted

    @property
    def step_seconds(self) -> list[float]:
        starts = [self.train_start, *self.step_ends[:-1]]
        return [end - start for start, end in zip(starts, self.step_ends)]

    @property
    def train_seconds(self) -> float:
        return (self.train_end or time.perf_counter()) - (self.train_start or 0.0)


class PrecomputeClock:
    """Seconds spent scoring the reference before training: TRL's ``precompute_ref_log_probs`` and
    the workbench's cached precompute around it (the cache lookup and its hashing included)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.depth = 0  # the workbench's precompute calls TRL's: count the outermost call only

    def timed(self, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            self.depth += 1
            try:
                return function(*args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0:
                    self.seconds += time.perf_counter() - start

        return wrapper

    def install(self) -> None:
        """Both run inside the trainer's constructor, before any callback exists, so the functions
        themselves are wrapped (in this worker process only)."""
        from engine import seams
        from engine.stages import dpo

        seams.timing_reference_pass(self.timed)
        dpo.cached_reference_logps = self.timed(dpo.cached_reference_logps)


def peak_memory() -> dict:
    """Peak RSS of this process in MiB (the kernel's high-water mark: psutil reports only the current
    RSS on Linux, which misses peaks between samples) and torch's peak GPU allocation, if any."""
    import torch

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"peak_rss_mb": round(rss_mb, 1), "gpu_peak_mb": round(gpu_mb, 1) if gpu_mb is not None else None}


def current_rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def final_metrics(log_history: list[dict]) -> dict:
    """The last logged train values (loss, and DPO's rewards/*) and the loss at every step."""
    train = [entry for entry in log_history if "loss" in entry]
    last = train[-1] if train else {}
    return {**{key: last.get(key) for key in FINAL_METRICS}, "losses": [entry["loss"] for entry in train]}


def summary(meter: Meter, clock: PrecomputeClock, trainer) -> dict:
    """One run's measurements: tokens/s counts the precompute with the training loop."""
    seconds = meter.train_seconds + clock.seconds
    steps = meter.step_seconds
    return {
        "steps": len(steps),
        "real_tokens": meter.real_tokens,
        "padded_tokens": meter.padded_tokens,
        "train_seconds": round(meter.train_seconds, 3),
        "reference_seconds": round(clock.seconds, 3),
        "tokens_per_second": round(meter.real_tokens / seconds, 2) if seconds > 0 else 0.0,
        "s_per_step": round(statistics.median(steps), 4) if steps else None,
        "step_seconds": [round(s, 4) for s in steps],
        "gradient_checkpointing": bool(getattr(trainer.model, "is_gradient_checkpointing", False)),
        **final_metrics(trainer.state.log_history),
        **peak_memory(),
        "rss_end_mb": current_rss_mb(),
    }
