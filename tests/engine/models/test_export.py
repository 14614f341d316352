"""Export: a run's adapter merged into its base loads with plain transformers and computes the
same logits as base + adapter; a full fine-tune is re-saved; nothing half-written on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.models import export
from engine.models.export import ExportError, export_path, export_run, list_exports
from tests.helpers import make_weight_run


@pytest.fixture(scope="module")
def runs(saves, tiny_model, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-runs")
    sft = make_weight_run(root, tiny_model, "sft", seed=11)
    return {"sft": sft, "dpo": make_weight_run(root, tiny_model, "dpo", seed=12, init_from=sft),
            "full": make_weight_run(root, tiny_model, "sft", seed=13, full=True)}


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_merged_export_matches_base_plus_adapter(runs, tiny_model, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = export_run(runs["dpo"], tmp_path / "dpo-merged")
    ids = AutoTokenizer.from_pretrained(folder)("SELECT name FROM users WHERE age > 30;", return_tensors="pt").input_ids
    merged = AutoModelForCausalLM.from_pretrained(folder)  # plain transformers, no peft
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), runs["dpo"].adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    diff = (logits(merged, ids) - logits(reference, ids)).abs().max().item()
    assert diff < 1e-4
    assert (logits(base, ids) - logits(reference, ids)).abs().max().item() > 100 * max(diff, 1e-6)  # it did change
    assert (folder / "model.safetensors").is_file() and not (folder / "adapter_config.json").exists()
    meta = json.loads((folder / "workbench_export.json").read_text())
    assert meta["source_run"] == runs["dpo"].name and meta["stage"] == "dpo" and meta["kind"] == "merged LoRA adapter"
    assert meta["base_model"] == str(tiny_model.resolve())
    assert merged.generation_config.eos_token_id == 2  # <|im_end|>: the tiny template's turn end


def test_full_run_export_keeps_its_weights(runs, tmp_path):
    from transformers import AutoModelForCausalLM

    folder = export_run(runs["full"], tmp_path / "full")
    ids = torch.tensor([[1, 5, 9, 33]])
    source = AutoModelForCausalLM.from_pretrained(runs["full"].model_dir)
    assert torch.equal(logits(AutoModelForCausalLM.from_pretrained(folder), ids), logits(source, ids))
    assert json.loads((folder / "workbench_export.json").read_text())["kind"] == "full fine-tune"


def test_failed_export_leaves_nothing(runs, tmp_path, monkeypatch):
    def broken(*_args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_write_metadata", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_run(runs["sft"], tmp_path / "broken")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its dot-named staging copy


def test_existing_folder_and_bad_names_are_refused(runs, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_run(runs["sft"], tmp_path / "taken")
    for bad in ("", "../up", "a/b", ".hidden"):
        with pytest.raises(ExportError, match="export name"):
            export_path(bad)


def test_cli_export_to_the_exports_folder(runs, saves, capsys):
    assert main(["export", str(runs["sft"])]) == 0
    folder = saves / "exports" / runs["sft"].name
    assert f"to {folder} (" in capsys.readouterr().out and (folder / "config.json").is_file()
    assert runs["sft"].name in [e["name"] for e in list_exports()]
    assert main(["export", str(runs["sft"])]) == 2  # exists: refused with a message, not a traceback
    assert "already exists" in capsys.readouterr().err
