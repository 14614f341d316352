"""Tests for engine.models.tiny: deterministic tiny models, built offline."""

from __future__ import annotations

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.models.loader import causal_lm, tokenizer_files
from engine.models.tiny import make_tiny_model

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "List users older than 30."},
    {"role": "assistant", "content": "SELECT name FROM users WHERE age > 30;"},
]


def test_make_tiny_is_deterministic(tiny_model, tmp_path):
    other = make_tiny_model(tmp_path / "again")
    a, b = load_file(tiny_model / "model.safetensors"), load_file(other / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tiny_model / name).read_bytes() == (other / name).read_bytes(), name
    different = load_file(make_tiny_model(tmp_path / "seed1", seed=1) / "model.safetensors")
    assert not torch.equal(a["model.embed_tokens.weight"], different["model.embed_tokens.weight"])


def test_make_tiny_does_not_touch_global_rng(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_model(tmp_path / "t")
    assert torch.equal(torch.rand(3), expected)


def test_tiny_loads_and_generates_with_plain_transformers(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
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


def test_tiny_chat_template(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = tok.apply_chat_template(MESSAGES, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nList users older than 30.<|im_end|>\n"
        "<|im_start|>assistant\nSELECT name FROM users WHERE age > 30;<|im_end|>\n"
    )
    prompt = tok.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nList users older than 30.<|im_end|>\n<|im_start|>assistant\n")
    assert not tok.apply_chat_template(MESSAGES[:2], tokenize=False).endswith("assistant\n")


def test_tiny_assistant_mask(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    out = tok.apply_chat_template(MESSAGES, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(masked) == "SELECT name FROM users WHERE age > 30;<|im_end|>"


def test_tiny_with_tokenizer_from(tiny_model, tmp_path):
    dest = make_tiny_model(tmp_path / "copy", tokenizer_from=tiny_model, hidden_size=32, num_layers=1)
    assert (dest / "tokenizer.json").read_bytes() == (tiny_model / "tokenizer.json").read_bytes()
    model, tok = causal_lm(dest), tokenizer_files(dest)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    assert tok.chat_template == AutoTokenizer.from_pretrained(tiny_model).chat_template
