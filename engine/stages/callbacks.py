"""The trainer callback that keeps the run folder live: metrics.jsonl, samples.jsonl (the model's
answers to a few fixed prompts, engine.stages.samples), status.json (with the training-health
warnings of engine.runs.health), graceful stop, a stop on NaN/inf and, when asked, on a
degeneration alarm."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path

import psutil
import torch
from transformers import TrainerCallback

from engine.config import ConfigError
from engine.models.loader import save_trained
from engine.runs import degeneration, health
from engine.runs.checkpoints import checkpoint_step
from engine.runs.folder import RunFolder
from engine.stages.ranks import is_main
from engine.stages.samples import Sampler

log = logging.getLogger("engine")
# Metric lines kept in memory for the health rules: they look back at most health.CHOSEN_WINDOW
# train lines, and eval lines can come in between. The run stops at the first NaN, so a tail suffices.
HISTORY = 100
# The last finite weights are copied at every step only when they are a small part of the model
# (LoRA trains a few percent of it): a copy of a fully fine-tuned model would add a whole model's
# memory to every run to insure against a rare event, so full fine-tuning goes without.
SNAPSHOT_MAX_FRACTION = 0.5


class StopRequest:
    """Set by the SIGTERM handler, or by the callback when training diverges (with a reason); the
    callback turns it into a clean end of training, and engine.train into the final state."""

    def __init__(self) -> None:
        self.requested = False
        self.reason: str | None = None  # why training stopped itself; None for a user's stop
        self.failed = False  # the run failed (NaN/inf), rather than stopped on purpose (an alarm)

    def set(self, *_args) -> None:
        self.requested = True

    def halt(self, reason: str, failed: bool = True) -> None:
        self.requested, self.reason, self.failed = True, reason, failed


STOP = StopRequest()  # one engine process trains one run, so one flag


class TrainingDiverged(RuntimeError):
    """The weights are NaN/inf and no finite copy exists: raised so that nothing is saved, rather
    than NaN weights under a normal-looking adapter/ or model/."""


def _all_finite(params: list) -> bool:
    return not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all())


class LastFiniteWeights:
    """A copy of the trainable weights as they were at a step (the start of each step; the last
    sample step without an alarm), renewed only while they are finite, so the step that turned them
    into NaN/inf, or the steps that made the model degenerate, can be undone before the final save."""

    def __init__(self) -> None:
        self.copies: list[torch.Tensor] | None = None
        self.step: int | None = None
        self.enabled: bool | None = None  # decided on the first step (see SNAPSHOT_MAX_FRACTION)

    @staticmethod
    def trainable(model) -> list:
        return [p for p in model.parameters() if p.requires_grad] if model is not None else []

    def take(self, model, step: int) -> None:
        params = self.trainable(model)
        if self.enabled is None and params:
            total = sum(p.numel() for p in model.parameters())
            self.enabled = sum(p.numel() for p in params) <= SNAPSHOT_MAX_FRACTION * total
        if not self.enabled or not _all_finite(params):
            return  # NaN weights keep the older copy: it is the last finite one
        with torch.no_grad():
            if self.copies is None:
                self.copies = [p.detach().clone() for p in params]
            else:
                for copy, p in zip(self.copies, params):
                    copy.copy_(p)
        self.step = step

    def finite(self, model) -> bool:
        return _all_finite(self.trainable(model))

    def restore(self, model) -> int | None:
        """Put the copy back into the model; the step it is from, or None without a copy."""
        if self.copies is None:
            return None
        with torch.no_grad():
            for p, copy in zip(self.trainable(model), self.copies):
                p.copy_(copy)
        return self.step


def pairs_per_log(args) -> int | None:
    """Examples (pairs) averaged into each logged train value: the health rules' batch size."""
    try:
        return (args.per_device_train_batch_size * args.gradient_accumulation_steps
                * max(1, args.world_size) * max(1, int(args.logging_steps)))
    except (AttributeError, TypeError):
        return None


def last_checkpoint(output_dir: str | None, before: int) -> Path | None:
    """The newest checkpoint-N folder saved before step ``before`` (its weights predate the NaN)."""
    steps = [(step, path) for path in (Path(output_dir).iterdir() if output_dir and Path(output_dir).is_dir() else [])
             if (step := checkpoint_step(path)) is not None and step < before]
    return max(steps)[1] if steps else None


def run_facts(run: RunFolder, loader) -> degeneration.RunFacts:
    """The settings the health advice reads, from the run's config.yaml (none from a folder without one)."""
    try:
        cfg = run.config()
    except (ConfigError, OSError):  # a folder without a usable config.yaml: advice without the run's numbers
        return degeneration.RunFacts()
    try:
        rows = len(loader.dataset) if loader is not None else None
    except TypeError:  # an iterable dataset has no length
        rows = None
    dpo = cfg.stage_options if cfg.stage == "dpo" else None
    return degeneration.RunFacts(learning_rate=cfg.training.learning_rate, epochs=cfg.training.num_train_epochs,
                                 pref_ftx=getattr(dpo, "pref_ftx", None), stop_on_alarm=cfg.samples.stop_on_alarm,
                                 train_rows=rows)


class RunFolderCallback(TrainerCallback):
    """Writes every value the trainer logs to metrics.jsonl, verbatim, plus throughput and memory.

    TRL's metric names (``loss``, ``rewards/chosen``, ``eval_rewards/margins`` ...) are kept as they
    are, so charts and users can match them with TRL's documentation.
    """

    def __init__(self, run: RunFolder, stop: StopRequest = STOP, sampler: Sampler | None = None,
                 save_minutes: float = 0.0, save_on_stop: bool = False) -> None:
        self.run = run
        self.save_seconds = save_minutes * 60
        self.save_on_stop = save_on_stop or bool(save_minutes)  # a stopped run can be resumed where it stopped
        self.last_save = time.time()
        self.elapsed_before = 0.0  # training seconds before a resume, so wall_time and the ETA go on
        self.stop = stop
        self.sampler = sampler
        self.process = psutil.Process(os.getpid())
        self.start_time = time.time()
        self.last_time = self.start_time
        self.last_tokens = 0
        self.history: deque[dict] = deque(maxlen=HISTORY)
        self.warnings: list[dict] | None = None  # as last written to status.json
        self.first_seen: dict[str, object] = {}  # code -> step, for the warnings that hold now
        self.sample_alarms: dict[str, dict] = {}  # code -> the degeneration alarm as first raised
        self.logged: set[str] = set()  # codes already written to engine.log (once each)
        self.weights = LastFiniteWeights()
        self.healthy = LastFiniteWeights()  # as of the last sample step without a degeneration alarm
        self.facts = degeneration.RunFacts()

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_time = self.last_time = self.last_save = time.time()
        self.facts = run_facts(self.run, kwargs.get("train_dataloader"))
        self.run.update_status(max_steps=state.max_steps, step=state.global_step)
        control.should_training_stop = self.stop.requested
        if self.sampler is not None:
            self.sampler.plan(state.max_steps, state.global_step)
        if state.global_step > 0:  # resumed from a checkpoint (engine.runs.checkpoints)
            self.resumed(state)
        elif self.sampler is not None:
            self.take_samples(args, state, control, **kwargs)  # step 0: the starting model, the baseline

    def resumed(self, state) -> None:
        """Go on from what the run logged up to its checkpoint (the engine rewound the rest): the health
        rules' history, the sample answers, the token count and the training time so far."""
        records = self.run.metrics()
        self.history.extend(records[-HISTORY:])
        self.elapsed_before = max((r.get("wall_time", 0.0) for r in records), default=0.0)
        self.last_tokens = state.num_input_tokens_seen or 0
        if self.sampler is not None:
            self.sampler.records = self.run.samples()
            self.sampler.last_step = state.global_step  # its answers at this step are already there
        log.info("resumed at step %d of %d", state.global_step, state.max_steps)

    def take_samples(self, args, state, control, model=None, processing_class=None, **_kwargs) -> None:
        """The sample prompts answered now; the health rules read them, and an alarm-free step's
        weights become the ones an alarm would restore."""
        step = state.global_step
        if model is None or processing_class is None or not self.sampler.due(step, state.max_steps):
            return
        count, limit = len(self.sampler.prompts), self.sampler.limit(step)
        self.run.update_status(activity=f"answering the {count} sample prompt{'s' * (count > 1)} at step {step} "
                                        f"(up to {limit} tokens each)")
        self.sampler.take(step, model, processing_class)
        if self.sampler.reused:
            log.info("samples at step %d: %d answers kept from an earlier run with the same start (%.1f s saved)",
                     step, count, self.sampler.full_cost)
        else:
            log.info("samples at step %d: %d answers of up to %d tokens in %.1f s", step, count, limit,
                     self.sampler.last_cost)
        self.run.update_status(activity=None, next_check=self.sampler.next_check(step))
        found = self.check_health(args, control, model)
        if not any(w["code"] in degeneration.CODES for w in found):
            self.healthy.take(model, state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.sampler is not None and not self.stop.requested:
            self.take_samples(args, state, control, **kwargs)  # the end, if not sampled at the last step
        self.keep_clean_weights(state, kwargs.get("model"), kwargs.get("processing_class"))
        if self.sampler is not None and self.sampler.records:
            log.info("samples: %d answers at %d steps took %.0f s of the run", len(self.sampler.records),
                     len({r["step"] for r in self.sampler.records}), self.sampler.seconds)

    def keep_clean_weights(self, state, model, tokenizer) -> None:
        """A LoRA run whose answers degenerated and that went on to the end (samples.stop_on_alarm off)
        keeps the adapter of its last check without an alarm in clean_adapter/, beside the final one:
        the user may still pick it afterwards (engine.runs.folder.swap_weights)."""
        step = self.healthy.step
        if (model is None or tokenizer is None or not self.sample_alarms or self.stop.reason is not None
                or step is None or step >= state.global_step or not hasattr(model, "peft_config") or not is_main()):
            return
        with torch.no_grad():
            final = [p.detach().clone() for p in LastFiniteWeights.trainable(model)]
            self.healthy.restore(model)
            save_trained(model, self.run.clean_dir, tokenizer, full=False)
            for p, copy in zip(LastFiniteWeights.trainable(model), final):
                p.copy_(copy)
        self.run.update_status(clean_step=step)
        log.info("kept the adapter of step %d, the last check without an alarm, in %s", step, self.run.clean_dir.name)

    def on_step_begin(self, args, state, control, **kwargs):
        self.weights.take(kwargs.get("model"), state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        now = time.time()
        record = {"step": state.global_step, "epoch": state.epoch}
        record.update(logs or {})
        tokens = state.num_input_tokens_seen or 0
        if "loss" in record and tokens > self.last_tokens and now > self.last_time:
            record["tokens_per_second"] = (tokens - self.last_tokens) / (now - self.last_time)
            self.last_tokens, self.last_time = tokens, now
        record["num_input_tokens_seen"] = tokens
        record["wall_time"] = self.elapsed_before + now - self.start_time
        record["memory_rss_mb"] = self.process.memory_info().rss / 2**20
        self.run.append_metrics(record)
        self.history.append(record)
        self.check_health(args, control, kwargs.get("model"))

    def check_health(self, args, control, model) -> list[dict]:
        """Evaluate engine.runs.health's rules; status.json gets the warnings that hold now (each with the
        step it was first seen at), engine.log each code once; NaN/inf stops training, and so does a
        degeneration alarm when samples.stop_on_alarm asks. Returns the warnings."""
        # fp16 loss scaling skips steps whose gradients overflow and logs grad_norm=inf for them: expected.
        ignore = ("grad_norm",) if getattr(args, "fp16", False) else ()
        samples, kl_bound = (self.sampler.records, self.sampler.kl_bound) if self.sampler else ((), None)
        found = health.check(list(self.history), pairs_per_log(args), ignore, samples, kl_bound, self.facts)
        self.first_seen = {w["code"]: self.first_seen.get(w["code"], w["step"]) for w in found}
        for w in found:
            w["step"] = self.first_seen[w["code"]]
            if w["code"] not in self.logged:
                self.logged.add(w["code"])
                log.warning("health: %s", w["message"])
        # A degeneration alarm stays once raised: a model that looped at step 12 and not at the end is
        # still a run to look at, and the Runs tab shows it after the run.
        for w in found:
            if w["code"] in degeneration.CODES:
                self.sample_alarms.setdefault(w["code"], w)
        found += [w for code, w in self.sample_alarms.items() if code not in {f["code"] for f in found}]
        if found != self.warnings:
            self.warnings = found
            self.run.update_status(warnings=found)
        diverged = next((w for w in found if w["code"] == health.NON_FINITE), None)
        if diverged is not None and self.stop.reason is None:
            self.halt(diverged, args, control, model)
        alarm = next((w for w in found if w["code"] in degeneration.CODES), None)
        if alarm is not None and self.stop.reason is None and self.sampler.opts.stop_on_alarm:
            self.stop_at_alarm(alarm, control, model)
        return found

    def stop_at_alarm(self, alarm: dict, control, model) -> None:
        """samples.stop_on_alarm: stop now, and save the weights of the last sample step without an
        alarm (a full fine-tune keeps no copy: its current weights are saved)."""
        control.should_training_stop = True
        step = self.healthy.restore(model) if model is not None else None
        kept = (f"the weights saved are those of step {step}, the last sample step without an alarm"
                if step is not None else "the weights saved are the current ones (a full fine-tune keeps no copy)")
        self.stop.halt(f"Stopped by samples.stop_on_alarm. {alarm['message']} {kept.capitalize()}.", failed=False)
        log.warning("training stopped: %s", self.stop.reason)

    def halt(self, diverged: dict, args, control, model) -> None:
        """Stop training on NaN/inf and make sure the weights the engine saves next are finite: the
        current ones if still finite, else the copy from before the step that broke them; with
        neither, raise so that nothing is saved."""
        control.should_training_stop = True
        checkpoint = last_checkpoint(getattr(args, "output_dir", None), int(diverged["step"] or 0))
        if checkpoint is not None and checkpoint.is_relative_to(self.run.path):
            checkpoint = checkpoint.relative_to(self.run.path)
        older = f"; the last checkpoint before it is {checkpoint}" if checkpoint else ""
        if model is None:  # a training loop that does not hand its model to callbacks
            kept = "the weights saved are the current ones (not checked for NaN)"
        elif self.weights.finite(model):
            kept = "the weights saved are the current ones (still finite)"
        elif (step := self.weights.restore(model)) is not None:
            kept = f"the weights saved are those after step {step}, the last finite ones"
        else:
            raise TrainingDiverged(f"{diverged['message']} The weights are NaN/inf: nothing was saved{older}.")
        self.stop.halt(f"{diverged['message']} Training stopped; {kept}{older}.")
        log.error("training stopped: %s", self.stop.reason)

    def on_step_end(self, args, state, control, **kwargs):
        self.run.update_status(step=state.global_step, max_steps=state.max_steps,
                               elapsed=self.elapsed_before + time.time() - self.start_time)
        if self.sampler is not None and not self.stop.requested:
            self.take_samples(args, state, control, **kwargs)
        if self.save_seconds and time.time() - self.last_save >= self.save_seconds:
            control.should_save = True  # by time: a crash loses at most save_minutes of training
        if self.stop.requested:
            control.should_training_stop = True
            # a user's Stop keeps a checkpoint to resume from; a NaN stop does not (its weights are not wanted)
            control.should_save = control.should_save or (self.save_on_stop and self.stop.reason is None)

    def on_save(self, args, state, control, **kwargs):
        self.last_save = time.time()
