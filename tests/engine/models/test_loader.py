"""Tests for engine.models.loader's pieces (whole runs load in the stage, chat and export tests)."""

from __future__ import annotations

import torch

from engine.models.loader import causal_lm, tokenizer_files
from engine.models.tiny import make_tiny_model


def test_tokenizer_files_sets_a_pad_token_and_causal_lm_a_dtype(tiny_model, tmp_path):
    dest = make_tiny_model(tmp_path / "nopad", tokenizer_from=tiny_model)
    cfg = dest / "tokenizer_config.json"
    cfg.write_text(cfg.read_text().replace('"pad_token": "<|endoftext|>",', ""))
    model, tok = causal_lm(dest, torch.bfloat16), tokenizer_files(dest)
    assert tok.pad_token == tok.eos_token
    assert model.dtype == torch.bfloat16
