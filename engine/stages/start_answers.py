"""The starting model's sample answers, kept across runs.

Every run answers its sample prompts at step 0: the baseline its later answers are read against.
On a 2-core CPU that one full-length check costs about as much as a tenth of a short run, and it is
the same for every run that starts from the same weights with the same prompts (a learning-rate or
beta sweep from one SFT run, a second try after an alarm). So the step-0 answers are kept beside
the run folders (saves/runs/.start_answers/: not a run, so no listing shows it), named by a digest
of everything they depend on: the starting weights' files (the base model's and the parent run's,
by name, size and modification time), the model and LoRA settings, the stage, the dtype as resolved
on this machine, the answer length and the prompts; a run that starts the same way reads them
instead of answering again. Nothing else is cached: every later check answers with the weights as
they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

from engine.config import ConfigError, RunConfig
from engine.files import atomic_write

log = logging.getLogger("engine")

VERSION = 1  # bump when what a record holds changes


def cache_dir(runs_root: Path) -> Path:
    """Where the starts' answers of the runs in ``runs_root`` are kept."""
    return runs_root / ".start_answers"


def _files(folder: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime) of a weights folder's files: a changed or re-fetched file changes the key."""
    if folder.is_file():
        folder = folder.parent
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())


def start_key(cfg: RunConfig, prompts: list, dtype: str, max_new_tokens: int) -> str | None:
    """The digest naming the answers of the run's starting weights, or None when they cannot be named
    (a missing model or parent: the run answers, and fails later where it would anyway)."""
    from engine.models.loader import base_model_path, parent_run

    try:
        parent = parent_run(cfg)
        weights = [base_model_path(cfg)] + ([parent.weights().path] if parent is not None else [])
        files = [[str(Path(w).resolve()), _files(Path(w))] for w in weights]
    except (ConfigError, OSError) as e:
        log.debug("start answers not cached: %s", e)
        return None
    facts = {"version": VERSION, "weights": files, "model": dataclasses.asdict(cfg.model),
             "finetuning": dataclasses.asdict(cfg.lora) if cfg.model.finetuning_type != "full" else None,
             "stage": cfg.stage, "dtype": dtype, "max_new_tokens": max_new_tokens, "prompts": prompts}
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load(runs_root: Path, key: str | None) -> dict | None:
    """{"records": [...], "seconds": float} kept for ``key``, or None."""
    if key is None:
        return None
    try:
        kept = json.loads((cache_dir(runs_root) / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return kept if isinstance(kept, dict) and isinstance(kept.get("records"), list) else None


def keep(runs_root: Path, key: str | None, records: list[dict], seconds: float) -> None:
    """Keep a start's answers; a cache that cannot be written only costs the next run its answering."""
    if key is None:
        return
    try:
        cache_dir(runs_root).mkdir(parents=True, exist_ok=True)
        atomic_write(cache_dir(runs_root) / f"{key}.json", json.dumps({"records": records, "seconds": seconds}))
    except OSError as e:
        log.warning("could not keep the starting model's answers (%s): the next run answers them again", e)
