"""Shared fixtures: an isolated saves/ folder and a tiny random model, both built offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def saves(tmp_path_factory) -> Path:
    """All runs and models of the test session live here, never in the real saves/."""
    root = tmp_path_factory.mktemp("saves")
    os.environ["WORKBENCH_SAVES"] = str(root)  # inherited by engine subprocesses too
    os.environ["HF_HUB_OFFLINE"] = "1"
    return root


@pytest.fixture(scope="session")
def tiny_model(saves) -> Path:
    from engine.models.store import make_tiny_model

    return make_tiny_model(saves / "models" / "tiny")
