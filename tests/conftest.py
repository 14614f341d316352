"""Shared fixtures: an isolated saves/ folder and a tiny random model, both built offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@pytest.fixture(scope="session")
def saves(tmp_path_factory) -> Path:
    """All runs and models of the test session live here, never in the real saves/."""
    root = tmp_path_factory.mktemp("saves")
    os.environ["WORKBENCH_SAVES"] = str(root)  # inherited by engine subprocesses too
    os.environ["HF_HUB_OFFLINE"] = "1"
    return root


@pytest.fixture(scope="session")
def tiny_model(saves) -> Path:
    from engine.models import make_tiny_model

    return make_tiny_model(saves / "models" / "tiny")


def tiny_config(stage: str, **sections) -> dict:
    """A config mapping for a seconds-long run on the tiny model and the shipped SQL data."""
    data = {"dataset": "sql_sft" if stage == "sft" else "sql_dpo", "max_samples": 32, "cutoff_len": 192,
            "dataset_dir": str(DATA)}
    cfg = {"stage": stage, "name": "test", "model": {"name_or_path": "tiny"},
           "data": data,
           "training": {"max_steps": 4, "logging_steps": 1, "per_device_train_batch_size": 4,
                        "gradient_accumulation_steps": 1, "learning_rate": 1e-3, "warmup_ratio": 0.0}}
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values} if isinstance(values, dict) else values
    return cfg
