"""The run folder: the only interface between the web UI, the CLI and the engine.

    saves/runs/<timestamp>-<stage>-<name>/
        config.yaml      complete config; the engine reads nothing else
        status.json      engine.runs.status.Status (written atomically)
        metrics.jsonl    one JSON object per logged step, append-only, flushed per line
        samples.jsonl    the answers to a few fixed prompts during training, one object per answer
        engine.log       the engine's log
        checkpoints/     intermediate checkpoints
        adapter/         final weights of a LoRA run (a PEFT adapter) ...
        model/           ... or of a full fine-tune (a whole model)
        jobs/            evaluations and exports of the run (engine.runs.jobs), a folder each
        accelerate.yaml  a distributed run's launch config (and deepspeed.json for ZeRO): engine.runs.launch

Readers never need the engine's code: plain JSON, JSONL and YAML. ``RunFolder`` is the one place
that spells these names.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.config import STAGES, ConfigError, RunConfig, dump_yaml, from_dict, read_yaml
from engine.config.stages import DEFAULT_SUMMARY
from engine.files import append_jsonl, atomic_write, read_jsonl, read_yaml_mapping, tail
from engine.paths import runs_root
from engine.runs.noise import without_library_noise
from engine.runs.status import ProcessFolder, State


@dataclass(frozen=True)
class Weights:
    """A run's final weights: a LoRA adapter over its base model, or a whole model (full fine-tune)."""

    path: Path
    full: bool


@dataclass(frozen=True)
class RunFolder(ProcessFolder):
    config_file = property(lambda self: self.path / "config.yaml")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    samples_file = property(lambda self: self.path / "samples.jsonl")
    log_file = property(lambda self: self.path / "engine.log")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    adapter_dir = property(lambda self: self.path / "adapter")
    model_dir = property(lambda self: self.path / "model")
    # a run that raised a degeneration alarm and went on keeps the weights of its last check without one here
    clean_dir = property(lambda self: self.path / "clean_adapter")
    jobs_dir = property(lambda self: self.path / "jobs")
    accelerate_file = property(lambda self: self.path / "accelerate.yaml")  # a distributed run (engine.runs.launch)
    deepspeed_file = property(lambda self: self.path / "deepspeed.json")

    def weights_dir(self, full: bool) -> Path:
        """Where the engine saves the final weights of a full fine-tune or of a LoRA run."""
        return self.model_dir if full else self.adapter_dir

    def weights(self) -> Weights | None:
        """The final weights, once saved (None before)."""
        if (self.adapter_dir / "adapter_config.json").is_file():
            return Weights(self.adapter_dir, full=False)
        if (self.model_dir / "config.json").is_file():
            return Weights(self.model_dir, full=True)
        return None

    def config(self) -> RunConfig:
        """config.yaml, validated (ConfigError names the file when it is unreadable, a bad key else)."""
        return from_dict(read_yaml(self.config_file))

    def raw_config(self) -> dict:
        """config.yaml as plain data, unvalidated: listings must show even a run whose config the
        current engine would refuse (an old run, a hand-edited file)."""
        return read_yaml_mapping(self.config_file)

    @property
    def stage(self) -> str | None:
        stage = self.raw_config().get("stage")
        return stage if isinstance(stage, str) else None

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_file)

    def append_metrics(self, record: dict[str, Any]) -> None:
        append_jsonl(self.metrics_file, record)

    def samples(self) -> list[dict[str, Any]]:
        """The answers to the sample prompts, one record per answer (engine.stages.samples)."""
        return read_jsonl(self.samples_file)

    def append_samples(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            append_jsonl(self.samples_file, record)

    def log_tail(self, lines: int) -> str:
        """The end of engine.log as the UI shows it: without library noise (engine.runs.noise)."""
        return without_library_noise(tail(self.log_file, lines))

    def summary(self, records: list[dict] | None = None) -> dict[str, float]:
        """The last value of each of the stage's summary metrics the run logged (engine.config.stages)."""
        return summary(self.stage, self.metrics() if records is None else records)


def summary(stage: str | None, records: list[dict]) -> dict[str, float]:
    """The last value of each summary metric of ``stage`` in metric records (loss and eval_loss for a
    stage this version does not know), in the stage's order."""
    keys = STAGES[stage].summary if stage in STAGES else DEFAULT_SUMMARY
    found = {}
    for key in keys:
        value = next((r[key] for r in reversed(records) if key in r), None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[key] = value
    return found


def slug(name: str) -> str:
    """A run or config name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


def create_run(cfg: RunConfig, root: Path | None = None) -> RunFolder:
    """Make a new run folder holding config.yaml and a queued status."""
    root = Path(root) if root else runs_root()
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{cfg.stage}-{slug(cfg.name)}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{cfg.stage}-{slug(cfg.name)}-{n}"
    path.mkdir()
    run = RunFolder(path)
    try:
        atomic_write(run.config_file, dump_yaml(cfg))
        run.update_status(state=State.QUEUED, created=time.time())
    except OSError as e:  # a full disk, a read-only folder: no half-made run left behind
        shutil.rmtree(path, ignore_errors=True)
        error = OSError(f"could not create the run folder {path}: {e.strerror or e}; free disk space "
                        f"or set another saves folder (WORKBENCH_SAVES)")
        error.errno = e.errno  # kept for callers; the message itself stays plain words
        raise error from None
    return run


def list_runs(root: Path | None = None) -> list[RunFolder]:
    """Run folders, newest first."""
    root = Path(root) if root else runs_root()
    if not root.exists():
        return []
    return [RunFolder(p) for p in sorted(root.iterdir(), reverse=True) if (p / "config.yaml").is_file()]


def latest_run(stages: tuple[str, ...], root: Path | None = None) -> RunFolder | None:
    """The newest completed run of one of the stages, or None."""
    return next((run for run in list_runs(root)
                 if run.stage in stages and run.status().state == State.COMPLETED), None)


def resolve_run(text: str | Path | RunFolder, root: Path | None = None, names_only: bool = False) -> RunFolder:
    """A run folder from its path, its folder name (or a unique prefix of it), or ``latest:<stage>``
    (the newest completed run of that stage). ``names_only``: the exact name of a folder under the
    runs folder and nothing else, for names a browser sends (they must not reach outside it)."""
    text = str(text)
    runs = list_runs(root)
    if names_only:
        match = next((run for run in runs if run.name == text), None) if text else None
        if match is None:
            raise FileNotFoundError(f"run {text!r} not found in {root or runs_root()}" if text else "no run selected")
        return match
    if (Path(text) / "config.yaml").is_file():
        return RunFolder(Path(text))
    if text.startswith("latest:"):
        stage = text.split(":", 1)[1]
        latest = latest_run((stage,), root)
        if latest is None:
            raise FileNotFoundError(f"{text}: no completed {stage} run in {root or runs_root()}")
        return latest
    matches = [run for run in runs if run.name == text] or [run for run in runs if run.name.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(run.name for run in runs[:10]) or "none yet"
    raise FileNotFoundError(f"run {text!r} not found ({'ambiguous' if matches else 'no match'}); runs: {known}")


def pin_parent(cfg: RunConfig) -> RunConfig:
    """Replace init_from (a name, a prefix or latest:<stage>) by the parent's folder, and likewise the
    stage's options that name runs (PPO's reward_run), so the config.yaml written for a new run
    reproduces it whatever runs come later."""
    if cfg.init_from:
        try:
            cfg.init_from = str(resolve_run(cfg.init_from))
        except FileNotFoundError as e:
            raise ConfigError(f"init_from: {e}") from None
    for option, wanted in STAGES[cfg.stage].run_settings.items():
        key, value = f"{cfg.stage}.{option}", getattr(cfg.stage_options, option)
        if not value:
            raise ConfigError(f"{key}: pick a finished {wanted} run")
        try:
            setattr(cfg.stage_options, option, str(resolve_run(value)))
        except FileNotFoundError as e:
            raise ConfigError(f"{key}: {e}") from None
    return cfg


def swap_weights(run: RunFolder) -> int:
    """Put the weights kept in clean_adapter/ (the last check without a degeneration alarm) in adapter/,
    and the ones that were there in clean_adapter/, so a second swap undoes the first; status.json
    says which step each holds. Returns the step adapter/ holds now."""
    from engine.runs.status import locked

    status = run.status()
    if status.state.active or status.clean_step is None or not run.clean_dir.is_dir():
        raise FileNotFoundError(f"{run.name} keeps no other weights to use" if not status.state.active
                                else f"{run.name} is still running")
    with locked(run.path):
        parked = run.path / "adapter.swap"
        run.adapter_dir.rename(parked)
        run.clean_dir.rename(run.adapter_dir)
        parked.rename(run.clean_dir)
    now = status.clean_step
    run.update_status(clean_step=status.weights_step or status.step, weights_step=now)
    return now
