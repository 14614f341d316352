"""`workbench data check / register / list` (engine.data_cli) on the layout fixtures."""

from __future__ import annotations

import json

from engine.cli import main
from engine.data.registry import read_registry
from tests.helpers import LAYOUT_FIXTURES

SEED = LAYOUT_FIXTURES / "lf_alpaca_ranking_seed000.jsonl"


def test_check_prints_layout_mapping_and_token_counts(tmp_path, tiny_model, capsys):
    assert main(["data", "check", str(SEED), "--dataset-dir", str(tmp_path), "--model", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    assert "3 rows, columns instruction, output" in out
    assert "layout: LLaMA-Factory alpaca ranking (output = [chosen, rejected])" in out
    assert "mapping: prompt=instruction, response=output" in out
    assert 'registry entry: {"file_name": "lf_alpaca_ranking_seed000.jsonl", "ranking": true}' in out
    assert "tokens chosen: min" in out and out.strip().endswith("ok: no errors")
    assert not (tmp_path / "dataset_info.json").exists()  # check writes nothing


def test_check_exits_1_and_lists_the_layouts_tried(tmp_path, capsys):
    assert main(["data", "check", str(LAYOUT_FIXTURES / "unknown_layout.jsonl"), "--dataset-dir", str(tmp_path),
                 "--model", "no-such-model"]) == 1
    out = capsys.readouterr().out
    assert "error: no known layout fits the columns q, a, b; tried:" in out and "  - plain text: no text column" in out
    assert "token counts not checked" in out


def test_register_copies_writes_the_entry_and_lists_it(tmp_path, tiny_model, capsys):
    argv = ["data", "register", str(SEED), "--dataset-dir", str(tmp_path), "--model", str(tiny_model)]
    assert main([*argv, "--name", "seed_dpo"]) == 0
    assert json.loads((tmp_path / "dataset_info.json").read_text()) == {
        "seed_dpo": {"file_name": "lf_alpaca_ranking_seed000.jsonl", "ranking": True}}
    assert (tmp_path / "lf_alpaca_ranking_seed000.jsonl").read_bytes() == SEED.read_bytes()
    assert main(argv) == 0  # no name: the file's stem, and a second copy under a free file name
    assert read_registry(tmp_path)["lf_alpaca_ranking_seed000"]["file_name"] == "lf_alpaca_ranking_seed000-2.jsonl"
    assert main(["data", "register", str(LAYOUT_FIXTURES / "plain_text.jsonl"), "--in-place", "--name", "notes",
                 "--dataset-dir", str(tmp_path), "--model", str(tiny_model)]) == 0
    assert read_registry(tmp_path)["notes"]["file_name"] == str(LAYOUT_FIXTURES / "plain_text.jsonl")
    capsys.readouterr()
    assert main(["data", "list", "--dataset-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [["seed_dpo", "alpaca", "pairs"],
                                                    ["lf_alpaca_ranking_seed000", "alpaca", "pairs"],
                                                    ["notes", "trl", "text"]]


def test_register_refuses_a_file_with_errors_and_writes_nothing(tmp_path, tiny_model, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "chosen": "same", "rejected": "same"}) + "\n")
    folder = tmp_path / "data"
    assert main(["data", "register", str(bad), "--dataset-dir", str(folder), "--model", str(tiny_model)]) == 1
    assert "identical chosen and rejected answers in rows 1" in capsys.readouterr().out
    assert not folder.exists()
