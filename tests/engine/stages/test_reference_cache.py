"""DPO's reference log-probs: computed once, kept under saves/cache/reference, reused when (and only
when) the reference weights and the tokens are the same."""

from __future__ import annotations

import logging

import pytest
import torch
from datasets import Dataset

from engine.config import from_dict
from engine.models.tiny import make_tiny_model
from engine.paths import reference_cache_dir
from engine.runs.folder import create_run
from engine.stages import reference_cache
from tests.helpers import tiny_config


@pytest.fixture
def own_saves(tmp_path, monkeypatch, tiny_model):
    """A saves folder of this test's own (an empty cache), the tiny model given by path."""
    monkeypatch.setenv("WORKBENCH_SAVES", str(tmp_path))
    return tiny_model


def build(model, data: dict | None = None, **sections):
    from engine.stages import dpo

    cfg = from_dict(tiny_config("dpo", model={"name_or_path": str(model)}, data={"max_samples": 8, **(data or {})},
                                **sections))
    return dpo.build_trainer(cfg, create_run(cfg), callbacks=[])


def reference_columns(trainer) -> tuple[list, list]:
    rows = trainer.train_dataset
    return rows["ref_chosen_logps"], rows["ref_rejected_logps"]


def test_a_second_run_reuses_the_first_runs_reference_even_with_other_dpo_settings(own_saves, caplog):
    caplog.set_level(logging.INFO, logger="engine")
    first = build(own_saves)
    assert "computed in" in caplog.text and len(list(reference_cache_dir().glob("*.json"))) == 1
    caplog.clear()
    second = build(own_saves, dpo={"beta": 0.5, "loss_type": "ipo"}, training={"learning_rate": 1e-4})
    assert "reused from" in caplog.text and "computed in" not in caplog.text
    assert reference_columns(second) == reference_columns(first)
    assert second.train_dataset.features["ref_chosen_logps"].dtype == "float32"


def test_other_tokens_or_other_reference_weights_get_their_own_entry(own_saves, tmp_path):
    build(own_saves)
    build(own_saves, data={"cutoff_len": 128})  # answers cut shorter: other tokens
    other_base = make_tiny_model(tmp_path / "other-base", seed=7, tokenizer_from=own_saves)
    build(other_base)
    assert len(list(reference_cache_dir().glob("*.json"))) == 3


def test_a_damaged_cache_file_is_computed_again_and_replaced(own_saves, caplog):
    expected = reference_columns(build(own_saves))
    (entry,) = reference_cache_dir().glob("*.json")
    entry.write_text('{"key": ', encoding="utf-8")
    caplog.set_level(logging.INFO, logger="engine")
    assert reference_columns(build(own_saves)) == expected
    assert "unreadable" in caplog.text and "computed in" in caplog.text
    assert entry.read_text(encoding="utf-8").startswith('{"key": {')


def test_the_weights_digest_of_a_lora_policy_covers_its_frozen_weights_only():
    layer = torch.nn.Linear(3, 2)
    layer.bias.requires_grad_(False)  # frozen: the reference uses it; the weight trains
    before = reference_cache.weights_digest(layer, part="frozen")
    with torch.no_grad():
        layer.weight.add_(1.0)
    assert reference_cache.weights_digest(layer, part="frozen") == before
    assert reference_cache.weights_digest(layer) != reference_cache.weights_digest(torch.nn.Linear(3, 2))
    with torch.no_grad():
        layer.bias.add_(1.0)
    assert reference_cache.weights_digest(layer, part="frozen") != before


def test_the_tokens_digest_sees_where_each_row_ends():
    def rows(prompts):
        return Dataset.from_dict({"prompt_ids": prompts, "chosen_ids": [[9], [9]], "rejected_ids": [[8], [8]]})

    assert reference_cache.tokens_digest(rows([[1, 2], [3]])) != reference_cache.tokens_digest(rows([[1], [2, 3]]))
    assert reference_cache.tokens_digest(rows([[1, 2], [3]])) == reference_cache.tokens_digest(rows([[1, 2], [3]]))
