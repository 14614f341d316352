"""Tests for engine.models.store: listing and resolving model folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from engine.models.store import list_models, resolve_model
from engine.models.tiny import make_tiny_model
from engine.paths import models_dir

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "List users older than 30."},
    {"role": "assistant", "content": "SELECT name FROM users WHERE age > 30;"},
]


@pytest.fixture
def saves(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WORKBENCH_SAVES", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny")


def test_models_dir_follows_env(saves):
    assert models_dir() == saves / "models"


def test_list_models(saves, tiny):
    assert list_models() == []
    root = saves / "models"
    make_tiny_model(root / "b-model", tokenizer_from=tiny)
    make_tiny_model(root / "a-model", hidden_size=32)
    (root / "not-a-model").mkdir()
    (root / ".SmolLM2-135M-Instruct.partial-x").mkdir()
    found = list_models()
    assert [m["name"] for m in found] == ["a-model", "b-model"]
    model = AutoModelForCausalLM.from_pretrained(root / "a-model")
    assert found[0]["params"] == model.num_parameters()
    assert found[0]["path"] == str(root / "a-model")
    assert found[0]["size_mb"] > 0
    assert list_models(root / "missing") == []


def test_resolve_model(saves, tiny, tmp_path, monkeypatch):
    make_tiny_model(saves / "models" / "mine", tokenizer_from=tiny)
    assert resolve_model(str(tiny)) == tiny.resolve()
    assert resolve_model("mine") == saves / "models" / "mine"
    monkeypatch.chdir(tiny.parent)
    assert resolve_model(tiny.name) == tiny.resolve()  # relative path wins
    with pytest.raises(FileNotFoundError) as err:
        resolve_model("nope")
    msg = str(err.value)
    assert "mine" in msg and "workbench models fetch" in msg and "path" in msg
