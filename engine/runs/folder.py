"""The run folder: the only interface between the web UI, the CLI and the engine.

    saves/runs/<timestamp>-<stage>-<name>/
        config.yaml      complete config; the engine reads nothing else
        status.json      state, pid, step, max_steps, started, ended, error (written atomically)
        metrics.jsonl    one JSON object per logged step, append-only, flushed per line
        engine.log       the engine's log
        checkpoints/     intermediate checkpoints
        adapter/         final PEFT adapter (LoRA runs)
        model/           final full model (full fine-tuning runs)
        eval.json        the latest `workbench eval` results (engine.inference.evaluate; written atomically)
        eval.log         that evaluation's output (the Evaluate tab starts it as a subprocess)

Readers never need the engine's code: plain JSON, JSONL and YAML.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from engine.config import STAGES, ConfigError, RunConfig, dump_yaml, from_dict
from engine.paths import runs_root

STATES = ("queued", "running", "completed", "failed", "stopped", "cancelled")
FINAL_STATES = ("completed", "failed", "stopped", "cancelled")




def atomic_write(path: Path, text: str) -> None:
    """Write via a temp file + rename so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def slug(name: str) -> str:
    """A run or config name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


def create_run(cfg: RunConfig, root: Path | None = None) -> Path:
    """Make a new run folder holding config.yaml and a queued status."""
    root = Path(root) if root else runs_root()
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{stamp}-{cfg.stage}-{slug(cfg.name)}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = root / f"{stamp}-{cfg.stage}-{slug(cfg.name)}-{n}"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
    write_status(run_dir, state="queued", pid=None, step=0, max_steps=None,
                 created=time.time(), started=None, ended=None, error=None)
    return run_dir


def raw_config(run_dir: Path) -> dict:
    """config.yaml as plain data, unvalidated: listings must show even a run whose config the
    current engine would refuse (an old run, a hand-edited file)."""
    try:
        data = yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def read_config(run_dir: Path) -> RunConfig:
    return from_dict(yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8")))


def read_status(run_dir: Path) -> dict[str, Any]:
    """status.json as a dict; {"state": "unknown"} when the folder has none."""
    try:
        return json.loads((Path(run_dir) / "status.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"state": "unknown"}


def write_status(run_dir: Path, **changes: Any) -> dict[str, Any]:
    """Merge changes into status.json atomically and return the new status."""
    status = read_status(run_dir) | changes
    atomic_write(Path(run_dir) / "status.json", json.dumps(status, indent=1))
    return status


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one line to metrics.jsonl and flush it so live readers see it at once."""
    with open(Path(run_dir) / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All complete lines of metrics.jsonl (a half-written last line is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return records


def output_dir(run_dir: Path) -> Path | None:
    """The run's final weights: adapter/ for LoRA runs, model/ for full fine-tuning."""
    for name in ("adapter", "model"):
        if (Path(run_dir) / name / "config.json").exists() or \
                (Path(run_dir) / name / "adapter_config.json").exists():
            return Path(run_dir) / name
    return None


def list_runs(root: Path | None = None) -> list[Path]:
    """Run folders, newest first."""
    root = Path(root) if root else runs_root()
    if not root.exists():
        return []
    return sorted((p for p in root.iterdir() if (p / "config.yaml").exists()), reverse=True)


def latest_run(stages: tuple[str, ...], root: Path | None = None) -> Path | None:
    """The newest completed run of one of the stages, or None."""
    return next((run for run in list_runs(root) if raw_config(run).get("stage") in stages
                 and read_status(run).get("state") == "completed"), None)


def resolve_run(name_or_path: str, root: Path | None = None) -> Path:
    """A run folder from its path, its folder name (or a unique prefix of it), or
    ``latest:<stage>``: the newest completed run of that stage."""
    path = Path(name_or_path)
    if (path / "config.yaml").exists():
        return path
    runs = list_runs(root)
    if name_or_path.startswith("latest:"):
        stage = name_or_path.split(":", 1)[1]
        latest = latest_run((stage,), root)
        if latest is None:
            raise FileNotFoundError(f"{name_or_path}: no completed {stage} run in {root or runs_root()}")
        return latest
    matches = [p for p in runs if p.name == name_or_path] or \
              [p for p in runs if p.name.startswith(name_or_path)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.name for p in runs[:10]) or "none yet"
    raise FileNotFoundError(f"run {name_or_path!r} not found ({'ambiguous' if matches else 'no match'}); "
                            f"runs: {known}")


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
