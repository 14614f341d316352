"""Tests for engine.models.loader's pieces (whole runs load in the stage, chat and export tests)."""

from __future__ import annotations

import shutil

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


def test_safetensors_are_preferred_and_a_bin_only_folder_is_loaded_with_a_warning(tiny_model, tmp_path, caplog):
    from engine.models.loader import causal_lm, safe_weights

    assert safe_weights(tiny_model) == {"use_safetensors": True}  # a .bin planted beside them is never read
    pickled = tmp_path / "pickled"  # an older model folder: config.json and pytorch_model.bin
    pickled.mkdir()
    shutil.copy(tiny_model / "config.json", pickled)
    torch.save(causal_lm(tiny_model).state_dict(), pickled / "pytorch_model.bin")
    with caplog.at_level("WARNING", logger="engine"):
        assert safe_weights(pickled) == {}
        causal_lm(pickled)
    assert "holds only pickled .bin weights" in caplog.text and "convert the model to safetensors" in caplog.text
