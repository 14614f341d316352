"""Tests for engine.data.layouts and engine.data.intake: every layout in tests/fixtures/datasets is
detected, mapped and checked clean with no choice made by hand, and reads as the conversation it holds."""

from __future__ import annotations

import json

import pytest

from engine.config.formats import LLAMAFACTORY_TAGS
from engine.data import intake, layouts
from engine.data.check import label_findings, validate
from engine.data.registry import normalize_entry, read_registry
from engine.data.rows import load_dataset_for_stage, row_kind, to_conversation
from engine.models.loader import load_tokenizer
from tests.helpers import LAYOUT_FIXTURES

TAP = "How do I fix a leaking tap?"
GOOD = "Turn off the water, remove the handle, replace the worn washer or O-ring, then reassemble."
BAD = "Take it apart and fix it."
PAIR = {"prompt": [{"role": "user", "content": TAP}], "chosen": [{"role": "assistant", "content": GOOD}],
        "rejected": [{"role": "assistant", "content": BAD}]}
SFT = {"prompt": [{"role": "user", "content": TAP}], "completion": [{"role": "assistant", "content": GOOD}]}
OPENAI = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
          "observation_tag": "tool"}

# fixture -> (layout words, formatting shown, ranking, columns, the first row as training reads it)
EXPECTED = {
    "lf_alpaca_ranking_seed000.jsonl": ("alpaca ranking (output", "alpaca", True,
                                        {"prompt": "instruction", "response": "output"}, None),
    "lf_alpaca_ranking_output_strings.json": ("alpaca ranking (output", "alpaca", True,
                                              {"prompt": "instruction", "query": "input", "response": "output"}, PAIR),
    "lf_alpaca_ranking_output_roles.jsonl": ("alpaca ranking (output", "alpaca", True,
                                             {"prompt": "instruction", "response": "output"}, PAIR),
    "lf_alpaca_chosen_rejected.json": ("chosen/rejected columns", "alpaca", True,
                                       {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                        "rejected": "rejected"}, PAIR),
    "lf_sharegpt_ranking.json": ("sharegpt ranking", "sharegpt", True,
                                 {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}, PAIR),
    "lf_sharegpt_ranking_role_content.jsonl": (
        "sharegpt ranking", "sharegpt", True, {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        {**PAIR, "prompt": [{"role": "system", "content": "You are a careful assistant."}, *PAIR["prompt"]]}),
    "trl_standard_preference.jsonl": ("TRL's standard preference", "prompt-chosen-rejected", True,
                                      {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}, PAIR),
    "trl_standard_implicit_prompt.jsonl": (
        "implicit prompt", "trl", True, {"chosen": "chosen", "rejected": "rejected"},
        {**PAIR, "prompt": [{"role": "user", "content": f"Question: {TAP}\nAnswer:"}]}),
    "trl_conversational_implicit_prompt.jsonl": ("conversational preference, implicit", "trl", True,
                                                 {"chosen": "chosen", "rejected": "rejected"}, PAIR),
    "trl_conversational_explicit_prompt.jsonl": ("conversational preference, explicit", "trl", True,
                                                 {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}, PAIR),
    "anthropic_hh.jsonl": (
        "Anthropic HH", "trl", True, {"chosen": "chosen", "rejected": "rejected"},
        {**PAIR, "prompt": [{"role": "user", "content": "Hi, can you help me?"},
                            {"role": "assistant", "content": "Of course, what do you need?"}, *PAIR["prompt"]]}),
    "ultrafeedback_binarized.parquet": ("UltraFeedback", "trl", True,
                                        {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}, PAIR),
    "trl_unpaired_kto.jsonl": ("unpaired KTO", "alpaca", False,
                               {"prompt": "prompt", "response": "completion", "kto_tag": "label"},
                               {**SFT, "label": True}),
    "alpaca_sft.json": ("alpaca instructions", "alpaca", False,
                        {"prompt": "instruction", "query": "input", "response": "output", "system": "system",
                         "history": "history"},
                        {"prompt": [{"role": "system", "content": "You are a translator."},
                                    {"role": "user", "content": "Translate to French\nGood morning"}],
                         "completion": [{"role": "assistant", "content": "Bonjour"}]}),
    "sharegpt_sft.json": ("LLaMA-Factory sharegpt conversations", "sharegpt", False,
                          {"messages": "conversations", "system": "system"},
                          {**SFT, "prompt": [{"role": "system", "content": "Be helpful."}, *SFT["prompt"]]}),
    "openai_messages.jsonl": ("OpenAI/TRL messages", "sharegpt", False, {"messages": "messages"},
                              {**SFT, "prompt": [{"role": "system", "content": "Be helpful."}, *SFT["prompt"]]}),
    "trl_prompt_completion.jsonl": ("TRL standard prompt/completion", "alpaca", False,
                                    {"prompt": "prompt", "response": "completion"}, SFT),
    "trl_conversational_prompt_completion.jsonl": ("TRL conversational prompt/completion", "trl", False,
                                                   {"prompt": "prompt", "response": "completion"}, SFT),
    "plain_text.jsonl": ("plain text", "trl", False, {"text": "text"}, {"text": f"{TAP} {GOOD}"}),
}


def test_every_fixture_is_covered():
    assert sorted(p.name for p in LAYOUT_FIXTURES.iterdir()) == sorted([*EXPECTED, "unknown_layout.jsonl"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layout_is_detected_mapped_and_checked_clean(name, tiny_model):
    words, formatting, ranking, columns, first = EXPECTED[name]
    checked = intake.check_file(LAYOUT_FIXTURES / name, tokenizer=load_tokenizer(tiny_model), cutoff_len=256)
    found = checked.detection
    assert words in found.layout
    assert (found.formatting, found.ranking, found.columns) == (formatting, ranking, columns)
    assert checked.problems == [] and checked.report.ok, checked.report
    assert checked.report.rows == len(checked.rows) and checked.report.measured == len(checked.rows)
    info = normalize_entry(checked.entry)
    if first is not None:
        assert to_conversation(checked.rows[0], info, row_kind(info) in ("pairs", "unpaired")) == first


def test_the_seed_000_layout_reads_its_chinese_pairs():
    checked = intake.check_file(LAYOUT_FIXTURES / "lf_alpaca_ranking_seed000.jsonl")
    row = to_conversation(checked.rows[1], normalize_entry(checked.entry), True)
    assert row["prompt"] == [{"role": "user", "content": "如何修复一个漏水的水龙头?"}]
    assert row["chosen"][0]["content"].startswith("修复漏水水龙头通常分几步")
    assert row["rejected"][0]["content"] == "你得先关掉水,然后把它拆开,换掉坏了的零件,再装回去。"


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e[1] in ("alpaca", "sharegpt",
                                                                                     "prompt-chosen-rejected")))
def test_llama_factory_layouts_get_plain_llama_factory_entries(name):
    """Only LLaMA-Factory's keys and values: formatting alpaca/sharegpt, its column roles and tags."""
    entry = intake.check_file(LAYOUT_FIXTURES / name).entry
    assert set(entry) <= {"file_name", "formatting", "ranking", "columns", "tags"}
    assert entry.get("formatting", "alpaca") in ("alpaca", "sharegpt")
    lf_roles = {"alpaca": {"prompt", "query", "response", "history", "system", "chosen", "rejected", "kto_tag"},
                "sharegpt": {"messages", "system", "tools", "chosen", "rejected", "kto_tag"}}
    assert set(entry.get("columns", {})) <= lf_roles[entry.get("formatting", "alpaca")]
    assert set(entry.get("tags", {})) <= set(LLAMAFACTORY_TAGS)


def test_role_content_messages_store_only_the_tags_that_differ_from_the_formats_default():
    assert intake.check_file(LAYOUT_FIXTURES / "openai_messages.jsonl").entry["tags"] == OPENAI
    assert "tags" not in intake.check_file(LAYOUT_FIXTURES / "lf_sharegpt_ranking.json").entry
    assert "tags" not in intake.check_file(LAYOUT_FIXTURES / "trl_conversational_implicit_prompt.jsonl").entry


def test_a_file_that_fits_no_layout_says_what_each_layout_lacked():
    checked = intake.check_file(LAYOUT_FIXTURES / "unknown_layout.jsonl")
    assert not checked.report.ok and checked.detection.layout == ""
    [message] = checked.problems
    assert message.startswith("no known layout fits the columns q, a, b; tried:")
    for name in layouts.LAYOUTS:
        assert f"  - {name}: " in message
    assert "role" not in message  # not a per-row error about roles
    assert "no chosen/rejected columns" in message and "no column of true/false labels" in message


def test_conversations_that_only_prompt_are_not_taken_for_sft_messages():
    rows = [{"conversations": [{"from": "human", "value": "q"}], "note": "x"}]
    found = layouts.detect(rows, ["conversations", "note"])
    assert found.layout == "" and "end with an assistant answer" in "\n".join(found.tried)


def test_chosen_conversations_are_not_taken_for_sharegpt_answers():
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
             "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
             "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}]
    found = layouts.detect(rows, list(rows[0]))
    assert (found.formatting, found.columns) == ("trl", {"chosen": "chosen", "rejected": "rejected"})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registered_layouts_load_for_their_stage(name, tmp_path):
    checked = intake.check_file(LAYOUT_FIXTURES / name)
    written_name, entry = intake.register_file(checked, tmp_path, name="mine")
    assert written_name == "mine" and (tmp_path / entry["file_name"]).is_file()
    info = read_registry(tmp_path)["mine"]
    kind = row_kind(info)
    rows = load_dataset_for_stage("mine", tmp_path, preference=kind in ("pairs", "unpaired"))
    assert len(rows) == len(checked.rows)
    expected_columns = {"pairs": ["prompt", "chosen", "rejected"], "unpaired": ["prompt", "completion", "label"],
                        "sft": ["prompt", "completion"], "text": ["text"]}[kind]
    assert rows.column_names == expected_columns
    assert json.loads((tmp_path / "dataset_info.json").read_text())["mine"] == checked.entry  # as drafted


def test_column_names_are_matched_case_insensitively_and_by_synonym():
    plain = [{"question": "q", "answer": "a"}]
    assert layouts.detect(plain, ["question", "answer"]).columns == {"prompt": "question", "response": "answer"}
    openai = [{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
               "Chosen": "c", "Rejected": "r"}]
    found = layouts.detect(openai, list(openai[0]))
    assert (found.formatting, found.ranking) == ("sharegpt", True)
    assert found.columns == {"messages": "messages", "chosen": "Chosen", "rejected": "Rejected"}
    assert found.tags == {**LLAMAFACTORY_TAGS, **OPENAI}


def test_unpaired_rows_are_counted_by_label():
    report = intake.check_file(LAYOUT_FIXTURES / "trl_unpaired_kto.jsonl").report
    assert report.labels == {True: 4, False: 4}
    only_good = intake.check_file(LAYOUT_FIXTURES / "trl_unpaired_kto.jsonl").rows.filter(lambda r: r["label"])
    entry = {"file_name": "x", "columns": {"prompt": "prompt", "response": "completion", "kto_tag": "label"}}
    found = label_findings(validate(only_good, entry))
    assert found[1] == ("warning", "KTO learns from both desirable and undesirable answers, and this file has only "
                                   "desirable ones")
