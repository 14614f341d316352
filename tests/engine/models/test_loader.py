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


def test_a_4bit_base_keeps_its_gradients_after_an_eval_forward(tiny_model):
    """bitsandbytes repacks a Linear4bit for its CPU inference kernel (no backward) at the first
    eval-mode, no-grad forward on an AVX-512 BF16 CPU, and keeps using it in training: DPO's
    reference scoring did that, and the adapters' gradients through the frozen base were dropped.
    training_model switches the repacking off; the gradients are the same with or without an eval
    forward first (on any CPU)."""
    import pytest

    pytest.importorskip("bitsandbytes")
    from engine.config import from_dict
    from engine.models.loader import training_model
    from tests.helpers import tiny_config

    cfg = from_dict(tiny_config("dpo", model={"name_or_path": "tiny", "finetuning_type": "qlora-4bit",
                                               "dtype": "float32"}))
    ids = torch.arange(5, 40).unsqueeze(0)

    def grads(eval_first: bool) -> dict[str, torch.Tensor]:
        model, _base = training_model(cfg)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:  # a trained adapter: gradients reach lora_A only through B
                    p.copy_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
        if eval_first:  # as the reference scoring / sample answers / evaluation do
            model.eval()
            with torch.no_grad():
                model(input_ids=ids)
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        packed = [n for n, m in model.named_modules()
                  if getattr(getattr(getattr(m, "weight", None), "quant_state", None), "packing_format_for_cpu", False)]
        assert packed == []
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain, after_eval = grads(False), grads(True)
    assert plain.keys() == after_eval.keys() and any("layers.0" in n and "lora_A" in n for n in plain)
    for name, grad in plain.items():
        assert torch.allclose(grad, after_eval[name], rtol=1e-4, atol=1e-7), name


def test_an_8bit_base_scores_the_same_in_eval_and_in_training_mode(tiny_model):
    """On a CPU, bitsandbytes' 8-bit layers took an int8-activation path in eval mode and a dequantised
    one in training mode: DPO's reference (eval) and the untrained policy (training) disagreed before any
    update. training_model keeps the layers on one path: the same logits in both modes."""
    import pytest

    pytest.importorskip("bitsandbytes")
    from engine.config import from_dict
    from engine.models.loader import training_model
    from tests.helpers import tiny_config

    cfg = from_dict(tiny_config("dpo", model={"name_or_path": "tiny", "finetuning_type": "qlora-8bit",
                                               "dtype": "float32"}))
    model, _base = training_model(cfg)
    ids = torch.arange(5, 40).unsqueeze(0)
    with torch.no_grad():
        model.eval()
        scored_in_eval = model(input_ids=ids).logits
        model.train()
        scored_in_training = model(input_ids=ids).logits
    assert torch.allclose(scored_in_eval, scored_in_training, atol=1e-5)
