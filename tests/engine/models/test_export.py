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


@pytest.fixture(scope="module")
def qlora_run(saves, tiny_model, tmp_path_factory):
    """A qlora-4bit DPO run whose adapter was trained (a few optimizer steps) on the 4-bit base, as
    engine.models.loader.training_model builds it, then saved as the engine saves it."""
    pytest.importorskip("bitsandbytes")
    from engine.config import from_dict
    from engine.models.loader import tokenizer_files, training_model
    from engine.runs.folder import create_run
    from engine.runs.status import State
    from tests.helpers import tiny_config

    cfg = tiny_config("dpo", model={"name_or_path": "tiny", "finetuning_type": "qlora-4bit", "dtype": "float32"})
    run = create_run(from_dict({**cfg, "name": "q4"}), root=tmp_path_factory.mktemp("qlora-runs"))
    model, _base = training_model(run.config())
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules())  # it did train on a 4-bit base
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    ids = torch.arange(5, 45).unsqueeze(0)
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(run.adapter_dir)
    tokenizer_files(tiny_model).save_pretrained(run.adapter_dir)
    run.update_status(state=State.COMPLETED, step=3, max_steps=3)
    return run


def test_qlora_adapter_is_merged_into_the_full_precision_base(qlora_run, tiny_model, saves, capsys):
    from safetensors.torch import load_file

    assert main(["export", str(qlora_run), "--out", str(saves / "exports" / "q4-merged")]) == 0
    folder = saves / "exports" / "q4-merged"
    out = capsys.readouterr().out
    assert "merged into the full-precision base (float32)" in out and "4-bit" in out  # the CLI says so

    # plain float32 tensors, no bitsandbytes state, no quantization_config
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    exported = load_file(folder / "model.safetensors")
    assert {t.dtype for t in exported.values()} == {torch.float32}
    assert not [k for k in exported if any(s in k for s in ("absmax", "quant_map", "quant_state", "SCB", "nested"))]

    # each weight is the full-precision base's + (alpha / r) B @ A: not the 4-bit rounding of it
    base = load_file(tiny_model / "model.safetensors")
    adapter = load_file(qlora_run.adapter_dir / "adapter_model.safetensors")
    lora = json.loads((qlora_run.adapter_dir / "adapter_config.json").read_text())
    scale = lora["lora_alpha"] / lora["r"]
    merged = set()
    for key, a in adapter.items():
        if ".lora_A." not in key:
            continue
        b = adapter[key.replace(".lora_A.", ".lora_B.")]
        name = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
        delta = scale * (b.float() @ a.float())
        assert delta.abs().max() > 1e-3, name  # the adapter was trained: it changes the weight
        assert torch.allclose(exported[name], base[name] + delta, atol=1e-6, rtol=0), name
        merged.add(name)
    assert len(merged) == 14  # 7 linear layers in each of the tiny model's 2 blocks
    for name in exported.keys() - merged:  # the rest (embeddings, norms) are the base's own
        assert torch.equal(exported[name], base[name]), name

    meta = json.loads((folder / "workbench_export.json").read_text())
    assert meta["kind"] == "QLoRA adapter merged into the full-precision base"
    assert meta["finetuning_type"] == "qlora-4bit" and meta["trained_on_quantised_base"] == "4-bit (nf4)"
    assert meta["merged_into"] == "full-precision base (loaded without quantisation)" and meta["dtype"] == "float32"
    assert "merged into the full-precision base" in (folder / "README.md").read_text()
    assert next(e for e in list_exports() if e["name"] == "q4-merged")["kind"] == meta["kind"]  # the UI's table


def test_a_quantised_merge_is_refused(runs, tiny_model, tmp_path, monkeypatch):
    """Were the base a quantised model (a bitsandbytes checkpoint as base), nothing is written."""
    from transformers import BitsAndBytesConfig

    pytest.importorskip("bitsandbytes")
    from engine.models import loader

    def quantised_base(run, dtype="auto"):
        lm = loader.causal_lm(tiny_model, torch.float32, quantization_config=BitsAndBytesConfig(load_in_8bit=True))
        return lm, tiny_model

    monkeypatch.setattr(export, "merged_model", quantised_base)
    with pytest.raises(ExportError, match="needs a full-precision base"):
        export_run(runs["sft"], tmp_path / "quantised")
    assert list(tmp_path.iterdir()) == []
