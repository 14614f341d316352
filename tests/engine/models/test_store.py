"""Tests for engine.models.store: listing and resolving model folders."""

from __future__ import annotations

import pytest
from transformers import AutoModelForCausalLM

from engine.models.store import list_models, resolve_model
from engine.models.tiny import make_tiny_model
from engine.paths import models_dir


def test_models_dir_follows_env(runs_env):
    assert models_dir() == runs_env / "models"


def test_list_models(runs_env, tiny_model):
    assert list_models() == []
    root = runs_env / "models"
    make_tiny_model(root / "b-model", tokenizer_from=tiny_model)
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


def test_resolve_model(runs_env, tiny_model, tmp_path, monkeypatch):
    make_tiny_model(runs_env / "models" / "mine", tokenizer_from=tiny_model)
    assert resolve_model(str(tiny_model)) == tiny_model.resolve()
    assert resolve_model("mine") == runs_env / "models" / "mine"
    monkeypatch.chdir(tiny_model.parent)
    assert resolve_model(tiny_model.name) == tiny_model.resolve()  # relative path wins
    with pytest.raises(FileNotFoundError) as err:
        resolve_model("nope")
    msg = str(err.value)
    assert "mine" in msg and "workbench models fetch" in msg and "path" in msg
