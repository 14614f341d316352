"""Tests for engine.data.check.py: layout detection, registry entries, validation and the preview."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset
from trl.data_utils import apply_chat_template

from engine.data import check as dc
from engine.data import layouts
from engine.data.reading import load_rows
from engine.data.registry import DatasetError, normalize_entry, read_registry, unique_file_name
from engine.data.rows import load_dataset_for_stage, to_conversation
from engine.models.loader import load_tokenizer
from tests.helpers import DATA


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(tiny_model)


def columns_of(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def pairs(n: int, **extra) -> list[dict]:
    return [{"prompt": f"Question {i}?", "chosen": f"A careful answer {i}.", "rejected": f"No {i}.", **extra}
            for i in range(n)]


# ---- detection and entries -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(read_registry(DATA)))
def test_detection_reproduces_the_shipped_registry(name):
    """Every hand-written sample entry is what detect() + build_entry() would have written."""
    info = read_registry(DATA)[name]
    rows = load_rows(info, DATA)
    found = layouts.detect(rows.to_list(), rows.column_names)
    entry = layouts.build_entry(info["file_name"], found.formatting, found.ranking, found.columns, rows.column_names,
                           found.tags, info.get("description", ""))
    assert layouts.check_mapping(found.formatting, found.ranking, found.columns, rows.column_names) == []
    assert normalize_entry(entry) == {k: v for k, v in info.items() if k != "probes"}  # probes are declared, not detected


def test_unmapped_default_columns_are_stored_as_null_so_they_are_not_read():
    rows = pairs(2, input="do not append me", system="sys")
    entry = layouts.build_entry("x.json", "prompt-chosen-rejected", False, {"prompt": "prompt", "chosen": "chosen",
                           "rejected": "rejected"}, columns_of(rows))
    assert entry == {"file_name": "x.json", "ranking": True,
                     "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected", "system": None,
                                 "query": None}}
    conv = to_conversation(rows[0], normalize_entry(entry), True)
    assert conv["prompt"] == [{"role": "user", "content": "Question 0?"}]
    assert layouts.display_format(entry) == "prompt-chosen-rejected"


def test_check_mapping_names_roles_and_columns():
    file_columns = ["q", "good", "bad"]
    errors = layouts.check_mapping("prompt-chosen-rejected", True, {"prompt": "q", "chosen": "good", "rejected": "oops"},
                              file_columns)
    assert errors == ["rejected: column 'oops' is not in the file; its columns are q, good, bad"]
    errors = layouts.check_mapping("alpaca", True, {"prompt": "q", "chosen": "good"}, file_columns)
    assert any(e.startswith("ranking: map either response") for e in errors)
    errors = layouts.check_mapping("alpaca", False, {"prompt": "q", "response": "q"}, file_columns)
    assert errors == ["column 'q' is mapped to both prompt and response; each role needs its own column"]
    assert layouts.check_mapping("sharegpt", False, {}, file_columns)[0].startswith("messages: choose the column")


# ---- validation --------------------------------------------------------------------------------


PCR = {"file_name": "x.json", "ranking": True,
       "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}}


def test_row_errors_carry_row_numbers_and_match_training(tmp_path):
    rows = pairs(5)
    rows[1]["prompt"] = ""
    rows[3]["chosen"] = "   "
    report = dc.validate(rows, PCR)
    assert not report.ok and report.rows == 5 and report.error_rows == 2
    assert [n for n, _ in report.row_errors] == [2, 4]
    assert "column 'prompt'" in report.row_errors[0][1] and "column 'chosen'" in report.row_errors[1][1]
    # training refuses the same file at the first of these rows
    (tmp_path / "x.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"x": PCR}), encoding="utf-8")
    with pytest.raises(DatasetError, match="row 2:"):
        load_dataset_for_stage("x", tmp_path, preference=True)


def test_identical_contradictory_and_score_swapped_pairs():
    rows = pairs(6, score_chosen=8.0, score_rejected=3.0)
    rows[1]["rejected"] = rows[1]["chosen"] + "  "          # identical once stripped
    rows[4] = {**rows[2], "chosen": rows[2]["rejected"], "rejected": rows[2]["chosen"]}  # row 3 reversed
    rows[5]["score_rejected"] = 9.5
    report = dc.validate(rows, PCR)
    assert report.identical == [2] and report.error_rows == 0 and not report.ok
    assert report.contradictory == [(3, 5)]
    assert report.score_columns == ("score_chosen", "score_rejected") and report.swapped == [6]
    assert dc.validate(pairs(3), PCR).ok


def test_truncation_findings_follow_trl(tokenizer):
    rows = pairs(3)
    rows[1]["prompt"] = "Tell me everything about databases. " * 30
    prompt_tokens = len(tokenizer.apply_chat_template([{"role": "user", "content": rows[0]["prompt"]}], tokenize=True,
                                                      add_generation_prompt=True, return_dict=True)["input_ids"])
    report = dc.validate(rows, PCR, tokenizer, cutoff_len=prompt_tokens + 2)
    assert report.ok and report.emptied == [2]
    assert report.truncated == [1, 3]  # the chosen answers (several tokens) no longer fit
    assert dc.length_stats(report.lengths["prompt"])[0] == prompt_tokens
    assert set(report.lengths) == {"prompt", "chosen", "rejected", "sequence"}
    assert dc.validate(rows, PCR, tokenizer, cutoff_len=4096).emptied == []


def test_a_template_that_refuses_a_row_is_a_row_error(tokenizer):
    class Refusing:
        def apply_chat_template(self, messages, **kwargs):
            if any(m["role"] == "system" for m in messages):
                raise ValueError("System role not supported")
            return tokenizer.apply_chat_template(messages, **kwargs)

    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d", "system": "s"}]
    report = dc.validate(rows, {"file_name": "x.json"}, Refusing(), cutoff_len=512)
    assert report.row_errors == [(2, "the chat template cannot render this row: System role not supported")]


def test_no_rows_is_an_error():
    report = dc.validate([], PCR)
    assert not report.ok and report.problems == ["the file has no rows"]


# ---- preview -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sql_sft", "sql_dpo_sharegpt"])
def test_preview_text_is_what_trl_renders(name, tokenizer):
    info = read_registry(DATA)[name]
    rows = load_rows(info, DATA)
    for row in dc.preview(rows, info, tokenizer, cutoff_len=None, start=2, count=3):
        conv = to_conversation(rows[row.number - 1], info, info["ranking"])
        expected = apply_chat_template(conv, tokenizer)
        assert row.prompt == expected["prompt"]
        assert {k: a.text for k, a in row.answers.items()} == {k: v for k, v in expected.items() if k != "prompt"}
        assert all(a.cut == "" and a.kept == a.text for a in row.answers.values())
    assert [r.number for r in dc.preview(rows, info, tokenizer, None, start=2, count=3)] == [2, 3, 4]


def test_preview_marks_truncation_and_dropped_rows(tokenizer):
    rows = pairs(2)
    rows[1]["prompt"] = "word " * 200
    conv = to_conversation(rows[0], normalize_entry(PCR), True)
    prompt_len, full = dc.tokenize_row(conv, tokenizer)
    cutoff = prompt_len + 3
    first, second = dc.preview(Dataset.from_list(rows), PCR, tokenizer, cutoff)
    chosen = first.answers["chosen"]
    assert chosen.kept_tokens == 3 and chosen.tokens == len(full["chosen"]) - prompt_len
    assert chosen.kept + chosen.cut == chosen.text and chosen.cut
    assert chosen.kept == tokenizer.decode(full["chosen"][prompt_len:cutoff])
    assert first.answers["rejected"].tokens == len(full["rejected"]) - prompt_len
    assert not first.dropped and second.dropped and second.answers["chosen"].kept == ""


def test_preview_reports_broken_rows_in_place(tokenizer):
    rows = pairs(2)
    rows[0]["chosen"] = ""
    broken, fine = dc.preview(rows, PCR, tokenizer, 512)
    assert "column 'chosen'" in broken.error and fine.error == "" and fine.answers


def test_token_checks_can_cover_the_first_rows_only(tokenizer):
    report = dc.validate(pairs(5), PCR, tokenizer, cutoff_len=512, token_rows=2)
    assert report.ok and report.rows == 5 and report.measured == 2 and len(report.lengths["prompt"]) == 2


# ---- registry edits (engine.data.registry, used by the Datasets tab) -----------------------------------


def test_unique_file_name_avoids_files_and_entries_whose_file_is_missing(tmp_path):
    (tmp_path / "pairs.jsonl").write_text("{}\n")
    registry = {"lost": {"file_name": "pairs-2.jsonl"}}
    assert unique_file_name(tmp_path, "pairs.JSONL", registry) == "pairs-3.jsonl"
    assert unique_file_name(tmp_path, "my data (v2).json", {}) == "my_data_v2.json"
