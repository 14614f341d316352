"""The Datasets tab's handlers on throw-away dataset folders (no browser; the tiny model's tokenizer)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gradio as gr
import pytest
from trl.data_utils import apply_chat_template

import engine.data.registry
from engine.data import check as dc
from engine.data import intake
from engine.data.reading import load_rows
from engine.data.registry import read_registry
from engine.data.rows import load_dataset_for_stage, to_conversation
from engine.models.loader import load_tokenizer
from tests.helpers import DATA
from webui import access, app, dataset_checks, dataset_probes, dataset_report
from webui.tabs import Page
from webui.tabs import datasets as tab


@pytest.fixture
def folder(tmp_path) -> Path:
    """A copy of the shipped data folder, so registrations never touch data/."""
    return Path(shutil.copytree(DATA, tmp_path / "data"))


@pytest.fixture
def model(tiny_model) -> str:
    return str(tiny_model)


def pairs(n: int, **extra) -> list[dict]:
    return [{"prompt": f"Question {i}?", "chosen": f"A careful answer {i}.", "rejected": f"No {i}.", **extra}
            for i in range(n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def open_file(folder: Path, upload: Path | None = None, path: str | None = None) -> dict:
    """What the form holds after a file is picked: load_source's outputs, by name."""
    kind = tab.SOURCES[0] if upload else tab.SOURCES[1]
    out = tab.load_source(kind, upload and str(upload), path, str(folder))
    roles = [out[tab.role_key(role)] for role in tab.dc.ROLES]
    return {**{k: out.get(k) for k in ("source", "name", "formatting", "ranking", "message")},
            "columns": [r.get("value", "") for r in roles], "visible": [r["visible"] for r in roles]}


def register(folder: Path, form: dict, model: str, cutoff: int = 512, version: int = 0, **changes) -> dict:
    form = {**form, **changes}
    out = tab.register(str(folder), model, "model", cutoff, version, form["name"], form["source"], form["formatting"],
                       form["ranking"], form.get("description", ""), *form["columns"])
    return {**out, "picker": out.get("picked")}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# ---- register ---------------------------------------------------------------------------------


def test_upload_is_copied_under_a_unique_name_and_registered_exactly(folder, model, tmp_path):
    upload = write_jsonl(tmp_path / "in" / "My Prefs.jsonl", pairs(4, system="Be brief."))
    (folder / "My_Prefs.jsonl").write_text("someone else's file\n")  # must not be overwritten
    before = json.loads((folder / "dataset_info.json").read_text())
    form = open_file(folder, upload=upload)
    assert (form["name"], form["formatting"], form["ranking"]) == ("My_Prefs", "prompt-chosen-rejected", True)
    assert "4 rows" in form["message"]
    out = register(folder, form, model, version=3, description="  my pairs ")
    assert out["message"].startswith("✅ Registered **My_Prefs**: 4 rows, copied to `My_Prefs-2.jsonl`")
    assert out["version"] == 4 and out["picker"]["value"] == "My_Prefs"
    assert ["My_Prefs", "prompt-chosen-rejected", "pairs", "My_Prefs-2.jsonl"] == out["table"][-1][:4]
    assert json.loads((folder / "dataset_info.json").read_text()) == {**before, "My_Prefs": {
        "file_name": "My_Prefs-2.jsonl", "ranking": True,
        "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}, "description": "my pairs"}}
    assert (folder / "My_Prefs-2.jsonl").read_bytes() == upload.read_bytes()
    assert (folder / "My_Prefs.jsonl").read_text() == "someone else's file\n"
    trained = load_dataset_for_stage("My_Prefs", folder, preference=True)
    assert trained[0]["prompt"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Question 0?"}]


def test_by_path_inside_the_folder_is_relative_and_outside_is_absolute(folder, model, tmp_path):
    write_jsonl(folder / "sub" / "inside.jsonl", pairs(2))
    out = register(folder, open_file(folder, path="sub/inside.jsonl"), model)
    assert out["message"].startswith("✅") and read_registry(folder)["inside"]["file_name"] == "sub/inside.jsonl"
    outside = write_jsonl(tmp_path / "elsewhere" / "outside.jsonl", pairs(2))
    out = register(folder, open_file(folder, path=str(outside)), model)
    assert read_registry(folder)["outside"]["file_name"] == str(outside.resolve())
    assert not (folder / "outside.jsonl").exists()  # not copied
    assert len(load_dataset_for_stage("outside", folder, preference=True)) == 2


def test_failed_validation_saves_nothing_and_names_the_rows(folder, model, tmp_path):
    rows = pairs(5)
    rows[2]["chosen"] = ""
    rows[3]["rejected"] = rows[3]["chosen"]
    upload = write_jsonl(tmp_path / "bad.jsonl", rows)
    before = snapshot(folder)
    out = register(folder, open_file(folder, upload=upload), model)
    assert out["message"].startswith("❌ Not registered") and out["version"] == 0
    assert "row 3: empty answer in column 'chosen'" in out["report"]
    assert "identical chosen and rejected answers in 1 row" in out["report"] and "remove row 4" in out["report"]
    assert snapshot(folder) == before


def test_a_failed_registry_write_removes_the_copied_file(folder, model, tmp_path, monkeypatch):
    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(engine.data.registry, "_write_json", broken_write)
    before = snapshot(folder)
    out = register(folder, open_file(folder, upload=write_jsonl(tmp_path / "ok.jsonl", pairs(3))), model)
    assert out["message"] == "❌ Not registered: disk full. Nothing was saved." and out["version"] == 0
    assert snapshot(folder) == before


@pytest.mark.parametrize("name, error", [("sql_sft", "already registered"), ("my data", "use letters"),
                                         ("", "give the dataset a name")])
def test_bad_names_are_refused(folder, model, tmp_path, name, error):
    before = snapshot(folder)
    out = register(folder, open_file(folder, upload=write_jsonl(tmp_path / "ok.jsonl", pairs(2))), model, name=name)
    assert out["message"].startswith("❌ Not registered") and error in out["message"]
    assert snapshot(folder) == before


def test_a_missing_model_skips_token_checks_but_not_registration(folder, tmp_path):
    form = open_file(folder, upload=write_jsonl(tmp_path / "ok.jsonl", pairs(2)))
    out = register(folder, form, "no-such-model")
    assert out["message"].startswith("✅") and "token counts and truncation not checked" in out["report"]


# ---- check: mapping, report, preview -----------------------------------------------------------


def check(folder: Path, form: dict, model: str, cutoff: int = 512, start: int = 1, **changes) -> dict:
    form = {**form, **changes}
    return tab.check(str(folder), model, "model", cutoff, start, form["source"], form["formatting"],
                     form["ranking"], "", *form["columns"])


def test_detection_fills_the_dropdowns_from_the_file(folder):
    form = open_file(folder, path="sql_dpo_train.json")
    roles = dict(zip(tab.dc.ROLES, form["columns"]))
    assert (form["formatting"], form["ranking"]) == ("alpaca", True)
    assert (roles["prompt"], roles["query"], roles["response"]) == ("instruction", "input", "output")
    assert dict(zip(tab.dc.ROLES, form["visible"]))["messages"] is False
    prompt = tab.load_source(tab.SOURCES[1], None, "sql_dpo_train.json", str(folder))[tab.role_key("prompt")]
    assert prompt["choices"] == [tab.NONE, ("instruction", "instruction"), ("input", "input"), ("output", "output")]
    out = tab.format_changed(form["source"], "prompt-chosen-rejected", False, *form["columns"])
    assert out["ranking"] == gr.update(value=True, interactive=False)
    assert "you set the format to **prompt-chosen-rejected** with ranking by hand" in out["message"]
    visible = [out[tab.role_key(r)]["visible"] for r in tab.dc.ROLES]
    assert visible == [r in ("prompt", "chosen", "rejected", "system") for r in tab.dc.ROLES]


def test_mapping_errors_name_the_role_and_the_columns(folder, model):
    form = open_file(folder, path="sql_sft_train.json")
    columns = dict(zip(tab.dc.ROLES, form["columns"]), response="")
    checked = check(folder, form, model, columns=list(columns.values()))
    report = checked["report"]
    assert report.startswith("❌ **Fix these before registering:**")
    assert "response: choose the column that holds the answer" in report and checked["preview"] == ""
    out = register(folder, form, model, columns=list(columns.values()))
    assert out["message"].startswith("❌ Not registered") and "sql_sft_train" not in read_registry(folder)


def test_report_counts_rows_emptied_by_truncation(folder, model):
    form = open_file(folder, path="sql_dpo_train.json")
    checked = check(folder, form, model, cutoff=90)
    report, entry, preview = checked["report"], checked["entry"], checked["preview"]
    info = read_registry(folder)["sql_dpo"]
    expected = dc.validate(load_rows(info, folder), info, load_tokenizer(model), 90)
    assert expected.emptied and expected.truncated
    assert report.startswith("✅ **300 rows, no errors.**")
    assert f"the prompt alone reaches cutoff_len = 90 tokens in {len(expected.emptied)} rows" in report
    assert json.loads(entry) == {"file_name": "sql_dpo_train.json", "ranking": True}  # LLaMA-Factory's defaults
    assert "✂ truncated at cutoff_len 90" in preview and "<h4" in preview


def test_preview_shows_what_trl_renders(folder, model):
    form = open_file(folder, path="sql_dpo_sharegpt_train.json")
    preview = check(folder, form, model, cutoff=4096, start=2)["preview"]
    info = read_registry(folder)["sql_dpo_sharegpt"]
    conv = to_conversation(load_rows(info, folder)[1], info, True)
    expected = apply_chat_template(conv, load_tokenizer(model))
    assert "Row 2" in preview and "Row 1<" not in preview and "✂" not in preview
    for text in expected.values():
        assert dataset_report._esc(text) in preview
    assert tab.preview_only(str(folder), model, "model", 4096, 4, form["source"], form["formatting"],
                            form["ranking"], "", *form["columns"]).count("<h4") == 3


def test_preview_escapes_markup_in_the_data(folder, model, tmp_path):
    rows = [{"prompt": "<script>alert(1)</script> ${value} {{x}}", "chosen": "a", "rejected": "b"}]
    preview = check(folder, open_file(folder, upload=write_jsonl(tmp_path / "x.jsonl", rows)), model)["preview"]
    assert "<script>" not in preview and "${" not in preview and "{{" not in preview


# ---- rename and remove --------------------------------------------------------------------------


def test_rename_keeps_the_position_and_refuses_taken_names(folder):
    names = list(read_registry(folder))
    out = tab.rename(str(folder), "sql_dpo", "sql_pairs", 5)
    assert out["message"].startswith("✅ Renamed **sql_dpo** to **sql_pairs**") and out["version"] == 6
    assert list(read_registry(folder)) == [("sql_pairs" if n == "sql_dpo" else n) for n in names]
    assert out["picked"]["value"] == "sql_pairs"
    before = snapshot(folder)
    out = tab.rename(str(folder), "sql_pairs", "sql_sft", 6)
    assert "already registered" in out["message"] and out["version"] == 6 and snapshot(folder) == before


def test_remove_asks_first_and_keeps_the_file(folder):
    asked = tab.ask_remove(str(folder), "helpful_pref")
    assert asked["confirm_row"]["visible"] is True and "helpful_pref_train.json` is kept" in asked["message"]
    assert "helpful_pref" in read_registry(folder)  # nothing happens before the confirmation
    out = tab.confirm_remove(str(folder), "helpful_pref", 0, asked["pending"])
    assert out["confirm_row"]["visible"] is False and out["version"] == 1 and "still on disk" in out["message"]
    assert out["pending"] is None
    assert "helpful_pref" not in read_registry(folder) and (folder / "helpful_pref_train.json").exists()
    assert "helpful_pref" not in [r[0] for r in out["table"]]
    stale = {"folder": str(folder), "name": "helpful_pref"}  # removed meanwhile (another tab)
    assert tab.confirm_remove(str(folder), "helpful_pref", 1, stale)["message"].startswith("❌ Not removed")
    nothing = tab.ask_remove(str(folder), None)
    assert nothing["confirm_row"]["visible"] is False and nothing["pending"] is None


def test_remove_needs_its_first_step_for_the_same_dataset(folder):
    # A direct call of the confirm step (nothing pending in the session) or one after the pick or
    # the folder changed removes nothing.
    before = snapshot(folder)
    out = tab.confirm_remove(str(folder), "sql_sft", 3)
    assert "nothing to confirm" in out["message"].lower() and out["version"] == 3 and out["pending"] is None
    pending = tab.ask_remove(str(folder), "sql_sft")["pending"]
    assert "changed" in tab.confirm_remove(str(folder), "sql_dpo", 3, pending)["message"]
    assert "changed" in tab.confirm_remove(str(folder.parent), "sql_sft", 3, pending)["message"]
    assert snapshot(folder) == before and tab.cancel_remove()["pending"] is None


# ---- the listing and the layout ------------------------------------------------------------------


def test_listing_and_layout(folder, model):
    listed = tab.refresh(str(folder))
    table, picker, files = listed["table"], listed["picked"], listed["files"]
    assert [r[0] for r in table] == list(read_registry(folder)) and picker["choices"] == [r[0] for r in table]
    assert ("sql_sft_train.json (used by sql_sft)", "sql_sft_train.json") in files["choices"]
    assert "dataset_info.json" not in [value for _, value in files["choices"]]
    assert intake.default_name("sql_sft", str(folder)) == "sql_sft_2"
    shown = tab.inspect_registered(str(folder), model, "model", 512, 1, "helpful_pref")
    assert shown["report"].startswith("✅ **150 rows") and "helpful_pref" in json.loads(shown["entry"])
    assert "Row 1" in shown["preview"]
    with gr.Blocks():
        page = Page([], {"model.name_or_path": gr.Textbox(model), "model.template": gr.Textbox("model")},
                    {"data.dataset_dir": gr.Textbox(str(folder)), "data.cutoff_len": gr.Number(512)})
        made = tab.build(page)
    parts = made.components
    assert isinstance(parts["registry_version"], gr.State)
    [load] = made.on_load
    assert load.outputs == [parts["table"], parts["manage_picked"], parts["path"]]
    assert set(load.fn()) == set(load.outputs)  # every listed component, answered by component


def test_big_files_get_token_checks_on_their_first_rows(folder, model, tmp_path, monkeypatch):
    monkeypatch.setattr(dc, "TOKEN_CHECK_ROWS", 2)
    report = check(folder, open_file(folder, upload=write_jsonl(tmp_path / "x.jsonl", pairs(3))), model)["report"]
    assert report.startswith("✅ **3 rows, no errors.**")
    assert "token counts and truncation cover the first 2 of 3 rows" in report


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_csv_parquet_and_json_uploads(folder, model, tmp_path, suffix):
    from datasets import Dataset

    rows = [{"question": f"Q{i}?", "answer": f"A{i}.", "context": "" if i % 2 else f"C{i}"} for i in range(3)]
    path = tmp_path / f"qa{suffix}"
    getattr(Dataset.from_list(rows), {".csv": "to_csv", ".parquet": "to_parquet", ".json": "to_json"}[suffix])(path)
    form = open_file(folder, upload=path)
    assert (form["formatting"], form["ranking"]) == ("alpaca", False)
    out = register(folder, form, model)
    assert out["message"].startswith(f"✅ Registered **qa**: 3 rows, copied to `qa{suffix}`")
    assert read_registry(folder)["qa"]["columns"]["query"] == "context"
    trained = load_dataset_for_stage("qa", folder, preference=False)
    assert trained[1]["prompt"] == [{"role": "user", "content": "Q1?"}]
    assert trained[0]["prompt"] == [{"role": "user", "content": "Q0?\nC0"}]


# ---- bad input: files that cannot be read, a broken registry ----------------------------------------


@pytest.mark.parametrize("name, content, message", [
    ("latin1.jsonl", b'{"prompt": "Hi", "chosen": "Hello.", "rejected": "No."}\n'
                     b'{"prompt": "caf\xe9?", "chosen": "Oui.", "rejected": "Non."}\n',
     "❌ latin1.jsonl, line 2: not UTF-8 text (byte 0xe9 at column 16); save the file with the UTF-8 encoding"),
    ("empty.jsonl", b"", "❌ empty.jsonl is empty: it holds no rows"),
    ("extra.csv", b"prompt,chosen,rejected\na,b,c\nd,e,f,g\n",
     "❌ extra.csv, line 3: 4 fields where the header has 3; quote fields that contain commas"),
], ids=["latin1.jsonl", "empty.jsonl", "extra.csv"])
def test_an_upload_that_cannot_be_read_is_named_and_nothing_is_saved(folder, model, tmp_path, name, content, message):
    upload = tmp_path / name
    upload.write_bytes(content)
    before = snapshot(folder)
    out = tab.load_source(tab.SOURCES[0], str(upload), None, str(folder))
    source = out["source"]
    assert out["message"] == message and source is None
    out = register(folder, {"name": "mine", "source": source, "formatting": "alpaca", "ranking": False,
                            "columns": [""] * len(tab.dc.ROLES)}, model)
    assert out["message"].startswith("❌") and "mine" not in read_registry(folder)
    assert snapshot(folder) == before


def test_a_broken_registry_is_named_the_tab_still_lists_and_nothing_is_written(folder, model, tmp_path):
    broken = b'{"sql_sft": {"file_name": "sql_sft_train.json"},\n'
    (folder / "dataset_info.json").write_bytes(broken)
    with pytest.warns(UserWarning, match=r"dataset_info.json is not valid JSON .*; fix the file or restore it"):
        listed = tab.refresh(str(folder))
    assert listed["table"] == [] and listed["picked"]["choices"] == []
    assert ("sql_sft_train.json", "sql_sft_train.json") in listed["files"]["choices"]
    form = open_file(folder, upload=write_jsonl(tmp_path / "ok.jsonl", pairs(2)))
    with pytest.warns(UserWarning, match="not valid JSON"):
        out = register(folder, form, model, name="mine")
    assert out["message"].startswith("❌ Not registered:") and "dataset_info.json is not valid JSON" in out["message"]
    assert (folder / "dataset_info.json").read_bytes() == broken and not (folder / "ok.jsonl").exists()


# ---- folders and files outside the allowed ones ------------------------------------------------


def test_every_handler_refuses_folders_and_files_outside_the_allowed_ones(folder, model, tmp_path, monkeypatch):
    # Any HTTP client can send any folder or path: each handler says so in its own message area and
    # neither reads nor creates anything there.
    monkeypatch.setenv(access.ENV_DIRS, str(folder))
    outside = tmp_path / "outside"
    secret = write_jsonl(outside / "secret.jsonl", pairs(2))
    new = outside / "new"
    refused = "is outside the folders the web UI may use"
    for kind, upload, path, where in ((tab.SOURCES[1], None, str(secret), folder),
                                      (tab.SOURCES[1], None, "../outside/secret.jsonl", folder),
                                      (tab.SOURCES[0], str(secret), None, folder),
                                      (tab.SOURCES[0], str(folder / "sql_sft_train.json"), None, new)):
        out = tab.load_source(kind, upload, path, str(where))
        assert out["source"] is None and refused in out["message"] and "--allow-dir" in out["message"]
    form = open_file(folder, upload=write_jsonl(folder / "ok.jsonl", pairs(2)))
    assert refused in register(new, form, model)["message"]
    assert refused in tab.check(str(new), model, "model", 512, 1, form["source"], form["formatting"],
                                form["ranking"], "", *form["columns"])["report"]
    assert refused in tab.inspect_registered(str(outside), model, "model", 512, 1, "sql_sft")["report"]
    renamed = tab.rename(str(outside), "a", "b", 3)
    assert refused in renamed["message"] and renamed["version"] == 3
    asked = tab.ask_remove(str(outside), "sql_sft")
    assert refused in asked["message"] and asked["pending"] is None
    assert refused in dataset_probes.probes_markdown(str(outside), "sql_sft")
    assert refused in dataset_probes.declare(str(outside), "sql_sft", "p", "contains", "x", 0)["message"]
    assert refused in dataset_probes.remove(str(outside), "sql_sft", "p", 0)["message"]
    with pytest.warns(UserWarning, match=refused):
        assert tab.refresh(str(new))["table"] == []
    assert tab.refresh_as_typed(str(new))["table"] == []  # typing: no warning per keystroke
    assert sorted(p.name for p in outside.iterdir()) == ["secret.jsonl"]
    tokenizer, note = dataset_checks.tokenizer_for(str(outside), "model")
    assert tokenizer is None and refused in note


def test_a_file_chosen_while_the_clear_before_it_runs_still_loads(tmp_path, monkeypatch):
    # Gradio's default trigger mode ("once") drops an event fired while the same event runs: a file
    # picked right after Clear was never read, and the form kept the cleared, empty name.
    monkeypatch.setenv("WORKBENCH_SAVES", str(tmp_path))  # build_app sets it: restored after the test
    demo = app.build_app(tmp_path)
    events = {fn.api_name: fn for fn in demo.fns.values()}
    assert events["load_dataset_file"].trigger_mode == "always_last"
