"""Tests for engine/data.py, engine.data.registry.py and the shipped sample datasets in data/."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from engine.data.reading import load_rows
from engine.data.registry import DatasetError, read_registry, write_registry
from engine.data.rows import load_dataset_for_stage, split_train_eval, to_conversation
from tests.helpers import DATA


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


def make(tmp_path: Path, files: dict[str, object], registry: dict) -> Path:
    """Write data files (lists -> .json / .jsonl, str -> raw text) and a registry into tmp_path."""
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif name.endswith(".jsonl"):
            path.write_text("".join(json.dumps(r) + "\n" for r in content), encoding="utf-8")
        else:
            path.write_text(json.dumps(content), encoding="utf-8")
    (tmp_path / "dataset_info.json").write_text(json.dumps(registry), encoding="utf-8")
    return tmp_path


# ---- conversion ---------------------------------------------------------------------------


def test_alpaca_sft_with_input_history_and_system(tmp_path):
    rows = [
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour",
         "system": "You are a translator.", "history": [["Hi", "Hello!"], ["How are you?", "Fine."]]},
        {"instruction": "Say hi.", "input": "", "output": "Hi!", "system": "", "history": []},
    ]
    d = make(tmp_path, {"sft.json": rows}, {"sft": {"file_name": "sft.json"}})
    ds = load_dataset_for_stage("sft", d, preference=False)
    assert ds.column_names == ["prompt", "completion"]
    assert ds[0] == {"prompt": [
        system("You are a translator."),
        user("Hi"), assistant("Hello!"),
        user("How are you?"), assistant("Fine."),
        user("Translate to French.\nGood morning")], "completion": [assistant("Bonjour")]}
    assert ds[1] == {"prompt": [user("Say hi.")], "completion": [assistant("Hi!")]}


@pytest.mark.parametrize("wrap", [lambda s: s, lambda s: {"content": s}], ids=["strings", "content-dicts"])
def test_alpaca_ranking_output_list(tmp_path, wrap):
    rows = [{"instruction": "Write SQL.", "input": "Table t(a). All rows.",
             "output": [wrap("-- All rows\nSELECT\n    *\nFROM\n    t;"), wrap("SELECT * FROM t;")]}]
    d = make(tmp_path, {"pref.json": rows}, {"pref": {"file_name": "pref.json", "ranking": True}})
    ds = load_dataset_for_stage("pref", d, preference=True)
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    assert ds[0] == {
        "prompt": [user("Write SQL.\nTable t(a). All rows.")],
        "chosen": [assistant("-- All rows\nSELECT\n    *\nFROM\n    t;")],
        "rejected": [assistant("SELECT * FROM t;")],
    }
    # the same ranking dataset used for SFT trains on the chosen answer
    sft = load_dataset_for_stage("pref", d, preference=False)
    assert sft[0] == {"prompt": [user("Write SQL.\nTable t(a). All rows.")],
                      "completion": [assistant("-- All rows\nSELECT\n    *\nFROM\n    t;")]}


def test_alpaca_explicit_chosen_rejected_columns(tmp_path):
    rows = [{"question": "Boil an egg?", "good": "1. Boil water.\n2. Cook 10 minutes.", "bad": "Boil it."}]
    registry = {"h": {"file_name": "h.json", "ranking": True,
                      "columns": {"prompt": "question", "chosen": "good", "rejected": "bad"}}}
    ds = load_dataset_for_stage("h", make(tmp_path, {"h.json": rows}, registry), preference=True)
    assert ds[0] == {"prompt": [user("Boil an egg?")],
                     "chosen": [assistant("1. Boil water.\n2. Cook 10 minutes.")],
                     "rejected": [assistant("Boil it.")]}


def test_sharegpt_ranking_with_system_and_history(tmp_path):
    rows = [
        {"conversations": [{"from": "system", "value": "Be brief."},
                           {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
                           {"from": "human", "value": "2+2?"}],
         "chosen": {"from": "gpt", "value": "4"}, "rejected": {"from": "gpt", "value": "5"}},
        {"conversations": [{"from": "human", "value": "Capital of France?"}],
         "chosen": {"from": "gpt", "value": "Paris"}, "rejected": {"from": "gpt", "value": "Lyon"}},
    ]
    registry = {"sg": {"file_name": "sg.json", "formatting": "sharegpt", "ranking": True,
                       "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}}}
    ds = load_dataset_for_stage("sg", make(tmp_path, {"sg.json": rows}, registry), preference=True)
    assert ds[0] == {"prompt": [system("Be brief."), user("Hi"), assistant("Hello"), user("2+2?")],
                     "chosen": [assistant("4")], "rejected": [assistant("5")]}
    assert ds[1] == {"prompt": [user("Capital of France?")], "chosen": [assistant("Paris")],
                     "rejected": [assistant("Lyon")]}


def test_sharegpt_sft_with_custom_tags_and_string_answers():
    info = read_registry_entry({"formatting": "sharegpt",
                                "columns": {"messages": "msgs"},
                                "tags": {"role_tag": "role", "content_tag": "content",
                                         "user_tag": "user", "assistant_tag": "assistant"}})
    row = {"msgs": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]}
    assert to_conversation(row, info, ranking_required=False) == {"prompt": [user("Hi")],
                                                                      "completion": [assistant("Hey")]}
    bad = {"msgs": [{"role": "assistant", "content": "Hey"}]}
    with pytest.raises(DatasetError, match="alternate"):
        to_conversation(bad, info, ranking_required=False)
    ranking = read_registry_entry({"formatting": "sharegpt", "ranking": True})
    row = {"conversations": [{"from": "human", "value": "Q"}], "chosen": "good", "rejected": "bad"}
    assert to_conversation(row, ranking, True)["chosen"] == [assistant("good")]


def read_registry_entry(entry: dict) -> dict:
    """Normalise one entry the way read_registry does, without touching disk twice per test."""
    from engine.data.registry import _normalize

    return _normalize("x", {"file_name": "x.json", **entry}, Path("dataset_info.json"))


def test_empty_prompt_and_answer_are_rejected():
    info = read_registry_entry({})
    with pytest.raises(DatasetError, match="empty prompt.*'instruction'"):
        to_conversation({"instruction": " ", "input": "", "output": "x"}, info, False)
    with pytest.raises(DatasetError, match="empty answer.*'output'"):
        to_conversation({"instruction": "q", "input": "", "output": ""}, info, False)


# ---- file formats ---------------------------------------------------------------------------


def test_jsonl_csv_parquet_and_folder_loading(tmp_path):
    rows = [{"instruction": f"q{i}", "input": "" if i % 2 else f"in{i}", "output": f"a{i}"} for i in range(4)]
    with open(tmp_path / "rows.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["instruction", "input", "output"])
        writer.writeheader()
        writer.writerows(rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet")
    registry = {name: {"file_name": f} for name, f in
                [("j", "rows.jsonl"), ("c", "rows.csv"), ("p", "rows.parquet"), ("dir", "parts")]}
    d = make(tmp_path, {"rows.jsonl": rows, "parts/a.jsonl": rows[:2], "parts/b.jsonl": rows[2:]}, registry)
    expected = [{"prompt": [user(r["instruction"] + (f"\n{r['input']}" if r["input"] else ""))],
                 "completion": [assistant(r["output"])]} for r in rows]
    for name in registry:
        ds = load_dataset_for_stage(name, d, preference=False)
        assert ds.to_list() == expected, name
    assert len(load_dataset_for_stage("c", d, preference=False, max_samples=3)) == 3


def test_missing_file_names_the_path(tmp_path):
    d = make(tmp_path, {}, {"gone": {"file_name": "nope.json"}})
    with pytest.raises(DatasetError, match=str(tmp_path / "nope.json")):
        load_dataset_for_stage("gone", d, preference=False)


# ---- errors ------------------------------------------------------------------------------------


def test_unknown_dataset_lists_registered_names(tmp_path):
    d = make(tmp_path, {}, {"alpha": {"file_name": "a.json"}, "beta": {"file_name": "b.json"}})
    with pytest.raises(DatasetError, match="unknown dataset 'gamma'.*alpha, beta"):
        load_dataset_for_stage("gamma", d, preference=False)


def test_preference_on_non_ranking_dataset_mentions_ranking(tmp_path):
    d = make(tmp_path, {"s.json": [{"instruction": "q", "output": "a"}]}, {"s": {"file_name": "s.json"}})
    with pytest.raises(DatasetError, match='"ranking": true'):
        load_dataset_for_stage("s", d, preference=True)


def test_identical_chosen_rejected_names_row_number(tmp_path):
    rows = [{"instruction": "q1", "output": ["good", "bad"]},
            {"instruction": "q2", "output": ["same", "same"]}]
    d = make(tmp_path, {"p.json": rows}, {"p": {"file_name": "p.json", "ranking": True}})
    with pytest.raises(DatasetError, match="dataset 'p', row 2: chosen and rejected answers are identical"):
        load_dataset_for_stage("p", d, preference=True)


def test_bad_output_shape_names_row_and_column(tmp_path):
    rows = [{"instruction": "q1", "output": ["only one"]}]
    d = make(tmp_path, {"p.json": rows}, {"p": {"file_name": "p.json", "ranking": True}})
    with pytest.raises(DatasetError, match="row 1: column 'output' must hold a list"):
        load_dataset_for_stage("p", d, preference=True)


# ---- registry ----------------------------------------------------------------------------------


def test_read_registry_defaults_and_missing_file(tmp_path):
    assert read_registry(tmp_path) == {}
    make(tmp_path, {}, {"a": {"file_name": "a.json", "description": "demo"},
                        "s": {"file_name": "s.json", "formatting": "sharegpt", "tags": {"user_tag": "user"}}})
    reg = read_registry(tmp_path)
    assert reg["a"]["formatting"] == "alpaca" and reg["a"]["ranking"] is False
    assert reg["a"]["description"] == "demo"
    assert reg["a"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output",
                                   "system": "system", "history": "history"}
    assert reg["s"]["columns"] == {"messages": "conversations", "system": "system", "tools": "tools"}
    assert reg["s"]["tags"]["user_tag"] == "user" and reg["s"]["tags"]["assistant_tag"] == "gpt"


def test_write_registry_is_atomic_and_round_trips(tmp_path):
    registry = {"a": {"file_name": "a.json", "description": "démo"},
                "p": {"file_name": "p.json", "ranking": True, "columns": {"chosen": "c", "rejected": "r"}}}
    write_registry(tmp_path, registry)
    loaded = read_registry(tmp_path)
    write_registry(tmp_path, loaded)  # normalised entries written back stay compact and equal
    assert read_registry(tmp_path) == loaded
    assert json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8")) == {
        "a": {"file_name": "a.json", "description": "démo"},
        "p": {"file_name": "p.json", "ranking": True, "columns": {"chosen": "c", "rejected": "r"}}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset_info.json"]
    before = (tmp_path / "dataset_info.json").read_bytes()
    with pytest.raises(TypeError):
        write_registry(tmp_path, {"bad": {"file_name": object()}})
    assert (tmp_path / "dataset_info.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset_info.json"]


def test_split_train_eval(tmp_path):
    from datasets import Dataset

    ds = Dataset.from_list([{"x": i} for i in range(10)])
    assert split_train_eval(ds, 0, seed=1) == (ds, None)
    train, evaluation = split_train_eval(ds, 0.2, seed=1)
    assert (len(train), len(evaluation)) == (8, 2)
    assert sorted(list(train["x"]) + list(evaluation["x"])) == list(range(10))
    assert list(split_train_eval(ds, 0.2, seed=1)[1]["x"]) == list(evaluation["x"])  # seeded
    assert len(split_train_eval(ds, 3, seed=1)[1]) == 3
    with pytest.raises(DatasetError, match="no training rows"):
        split_train_eval(ds, 10, seed=1)


# ---- shipped sample data -------------------------------------------------------------------------


def test_shipped_registry_loads_every_dataset():
    registry = read_registry(DATA)
    assert set(registry) == {"sql_sft", "sql_sft_eval", "sql_dpo", "sql_dpo_eval", "sql_dpo_sharegpt",
                             "sql_dpo_sharegpt_eval", "helpful_pref", "helpful_pref_eval", "howto_pref", "howto_pref_eval",
                             "penn_sft", "penn_pref", "penn_pref_eval"}
    minimum = {"sql_sft": 240, "sql_sft_eval": 40, "sql_dpo": 240, "sql_dpo_eval": 48,
               "sql_dpo_sharegpt": 50, "sql_dpo_sharegpt_eval": 10, "helpful_pref": 140, "helpful_pref_eval": 25,
               "howto_pref": 20, "howto_pref_eval": 8, "penn_sft": 150, "penn_pref": 150, "penn_pref_eval": 50}
    loaded = {}
    for name, info in registry.items():
        raw = json.loads((DATA / info["file_name"]).read_text(encoding="utf-8"))
        ds = load_dataset_for_stage(name, DATA, preference=info["ranking"])
        assert len(ds) == len(raw) >= minimum[name], name
        loaded[name] = ds
        if info["ranking"]:
            assert load_dataset_for_stage(name, DATA, preference=False, max_samples=5).column_names == ["prompt", "completion"]
    # sharegpt rows exercise system prompts and history
    prompts = loaded["sql_dpo_sharegpt"]["prompt"]
    assert any(p[0]["role"] == "system" for p in prompts)
    assert any(sum(m["role"] == "user" for m in p) > 1 for p in prompts)
    # about a quarter of SFT answers use the preferred (commented) style
    answers = [c[0]["content"] for c in loaded["sql_sft"]["completion"]]
    assert 0.2 <= sum(a.startswith("--") for a in answers) / len(answers) <= 0.3


def _sql_rows(name: str) -> list[tuple[str, str]]:
    """(request text, normalised one-line SQL) per row of a shipped SQL dataset."""
    ds = load_dataset_for_stage(name, DATA, preference=name.startswith("sql_dpo"))
    prompts = ds["prompt"]
    answers = [r[0] for r in (ds["completion"] if "completion" in ds.column_names else ds["rejected"])]
    rows = []
    for prompt, answer in zip(prompts, answers):
        # the request follows the schema "table(a, b, ...)" and contains no parenthesis itself
        tail = prompt[-1]["content"].rsplit(")", 1)[-1]
        request = re.sub(r"^[.,]\s*(write a SQL query (to answer|for this request):\s*)?", "", tail, flags=re.I)
        sql = " ".join(w for line in answer["content"].splitlines() if not line.startswith("--")
                       for w in line.split())
        rows.append((request, sql))
    return rows


def test_shipped_eval_sets_are_held_out():
    train = {name: _sql_rows(name) for name in ("sql_sft", "sql_dpo")}
    for eval_name in ("sql_sft_eval", "sql_dpo_eval"):
        held_out = _sql_rows(eval_name)
        for train_name, rows in train.items():
            for column in (0, 1):  # neither the request text nor the query repeats
                assert not {r[column] for r in held_out} & {r[column] for r in rows}, (eval_name, train_name)
    # pretty and one-line answers of a DPO pair are the same query
    dpo = load_dataset_for_stage("sql_dpo", DATA, preference=True)
    for (_, sql), chosen in zip(train["sql_dpo"], dpo["chosen"]):
        assert " ".join(chosen[0]["content"].split("\n", 1)[1].split()) == sql
    # DPO prompts mostly differ from SFT prompts
    sft_requests = {r[0] for r in train["sql_sft"]}
    assert sum(r[0] in sft_requests for r in train["sql_dpo"]) < 0.1 * len(train["sql_dpo"])
    helpful_eval = {r["instruction"] for r in json.loads((DATA / "helpful_pref_eval.json").read_text("utf-8"))}
    helpful_train = {r["instruction"] for r in json.loads((DATA / "helpful_pref_train.json").read_text("utf-8"))}
    assert not helpful_eval & helpful_train


def test_a_broken_json_line_is_named_by_file_and_line(tmp_path):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n{"instruction": \n')
    with pytest.raises(DatasetError, match=r"^pairs.jsonl, line 3: not valid JSON \(Expecting value"):
        load_rows({"file_name": "pairs.jsonl"}, tmp_path)
    doc = tmp_path / "rows.json"
    doc.write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": "c" "output": "d"}\n]\n')
    with pytest.raises(DatasetError, match=r"^rows.json, line 3: not valid JSON \(Expecting ',' delimiter"):
        load_rows({"file_name": "rows.json"}, tmp_path)
