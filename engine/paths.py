"""Where things live on disk: the repository, and the saves folder with its runs, models and exports.

``WORKBENCH_SAVES`` relocates the whole saves folder (tests and deployments do); the engine
processes the UI and CLI start inherit it, so every process finds the same runs and models.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def saves_root() -> Path:
    return Path(os.environ.get("WORKBENCH_SAVES", REPO_ROOT / "saves"))


def runs_root() -> Path:
    return saves_root() / "runs"


def models_dir() -> Path:
    """Where named models live (`workbench models`)."""
    return saves_root() / "models"


def exports_root() -> Path:
    return saves_root() / "exports"


def cache_root() -> Path:
    """Measurements and results kept between runs; deleting it only costs recomputing them."""
    return saves_root() / "cache"


def reference_cache_dir() -> Path:
    """DPO's reference log-probs, computed once per (reference weights, tokens) and reused."""
    return cache_root() / "reference"


def cpu_dtype_file() -> Path:
    """The bf16 / float32 matrix-product ratio measured on each machine (engine.models.cpu_dtype)."""
    return cache_root() / "cpu-dtype.json"
