"""The Chat tab's handlers, called as Gradio calls them: run lists, streaming columns, stop,
clear, refusals; runs are hand-made on the tiny model in a saves/ of the test's own."""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr
import pytest

from engine.inference import chat as engine_chat
from engine.models.tiny import make_tiny_model
from tests.helpers import make_run, make_weight_run
from webui import app, runinfo
from webui.tabs import Page, chat

PROMPT = "Names of users over 30."


@pytest.fixture
def chat_env(runs_env, tiny_model) -> dict[str, Path]:
    """saves/ with the tiny model (linked), an SFT and a DPO adapter run on it, a run on another
    base model, and a failed run without weights."""
    (runs_env / "models").mkdir()
    (runs_env / "models" / "tiny").symlink_to(tiny_model)
    other = make_tiny_model(runs_env / "models" / "other", seed=5)
    sft = make_weight_run(runs_env / "runs", tiny_model, "sft", seed=1)
    dpo = make_weight_run(runs_env / "runs", tiny_model, "dpo", seed=2, init_from=sft)
    foreign = make_weight_run(runs_env / "runs", other, "sft", seed=3, model_name="other")
    failed = make_run("sft", state="failed", stamp="20200101-000000")
    return {"sft": sft, "dpo": dpo, "foreign": foreign, "failed": failed}


def run_send(base, keys, prompt=PROMPT, max_tokens=8, temperature=0.0, on_yield=None) -> list[dict]:
    outputs = []
    for out in chat.send(base, keys, prompt, "", max_tokens, temperature, 1.0, 0, None):
        outputs.append(out)
        if on_yield:
            on_yield(out)
    return outputs


def slot(out: dict, i: int) -> tuple:
    """(box, answer, stats) of slot i in a send or clear answer (None for a part it leaves as it is)."""
    return tuple(out.get(chat.slot(part, i)) for part in ("box", "answer", "stats"))


def test_only_finished_runs_with_weights_are_offered(chat_env):
    names = [name for _label, name in runinfo.finished_runs()]
    assert set(names) == {chat_env["sft"].name, chat_env["dpo"].name, chat_env["foreign"].name}
    labels = dict((name, label) for label, name in runinfo.finished_runs())
    assert labels[chat_env["dpo"].name] == f"{chat_env['dpo'].name} · dpo · completed"
    out = chat.refresh(None, [chat.BASE_VALUE, "gone"])
    base, columns = out["base"], out["columns"]
    assert base["choices"] == ["other", "tiny"] and base["value"] == "other"  # newest finished run's base
    assert columns["choices"][0] == (chat.BASE_LABEL, chat.BASE_VALUE) and columns["value"] == [chat.BASE_VALUE]
    assert chat.BASE_VALUE == engine_chat.BASE_KEY
    # picks that still fit are not sent back: a late answer (the tab opened while the user picked) keeps them
    kept = chat.refresh("tiny", [chat.BASE_VALUE, chat_env["sft"].name])
    assert "value" not in kept["base"] and "value" not in kept["columns"] and kept["columns"]["choices"]


def test_a_page_load_restores_the_picks_this_browser_made_while_they_still_exist(chat_env):
    picked = {"base": "tiny", "columns": [chat.BASE_VALUE, chat_env["sft"].name, "deleted-since"]}
    out = chat.restore(picked)
    assert out["base"]["value"] == "tiny" and out["columns"]["value"] == [chat.BASE_VALUE, chat_env["sft"].name]
    fresh = chat.restore({})  # a browser that never picked: the defaults
    assert fresh["base"]["value"] == "other" and fresh["columns"]["value"] == [chat.BASE_VALUE]
    assert chat.restore({"base": "gone", "columns": "not a list"})["columns"]["value"] == [chat.BASE_VALUE]


def test_send_streams_every_column_side_by_side(chat_env):
    keys = [chat.BASE_VALUE, chat_env["sft"].name, chat_env["dpo"].name]
    outputs = run_send("tiny", keys)
    final = outputs[-1]
    assert final["message"].startswith("Answered in")
    expected = list(engine_chat.stream_chat("tiny", [engine_chat.BASE_KEY, str(chat_env["sft"]),
                                                      str(chat_env["dpo"])], PROMPT,
                                            engine_chat.Sampling(max_new_tokens=8)))[-1]
    for i, answer in enumerate(expected):
        box, text, stats = slot(final, i)
        assert box["visible"] and text["value"] == answer.text and text["label"] == answer.label
        assert "tokens/s" in stats and stats[0] in "✅✂"
    assert slot(final, 3)[0]["visible"] is False
    assert "loading models" in slot(outputs[0], 0)[2]  # the first yield comes before any model loads


def test_stop_ends_the_answers_of_this_session_only(chat_env):
    other_session = threading.Event()
    chat._stops["someone-else"] = other_session

    def stop_once_generating(out):
        if "✍️" in slot(out, 0)[2]:
            chat.stop(None)

    outputs = run_send("tiny", [chat.BASE_VALUE, chat_env["sft"].name], max_tokens=500,
                       on_yield=stop_once_generating)
    assert outputs[-1]["message"].startswith("Stopped in")
    assert all("⏹" in slot(outputs[-1], i)[2] for i in range(2))
    assert not other_session.is_set()
    del chat._stops["someone-else"]


def test_refusals_are_messages_not_tracebacks(chat_env):
    out = run_send("tiny", [chat_env["foreign"].name])[-1]
    message = out["message"]
    assert message.startswith("❌ run ") and "trained on other" in message and "chosen base model tiny" in message
    assert run_send("tiny", [chat.BASE_VALUE], prompt=" ")[-1]["message"] == "❌ type a prompt first"
    assert run_send("tiny", [])[-1]["message"] == "❌ pick at least one model to answer"
    # only names under saves/runs
    assert run_send("tiny", ["../../etc"])[-1]["message"].startswith("❌ run '../../etc' not found")
    assert run_send(None, [chat.BASE_VALUE])[-1]["message"] == "❌ pick a base model"


def test_columns_follow_the_selection_and_clear_empties_them(chat_env):
    layout = chat.show_columns([chat.BASE_VALUE, chat_env["dpo"].name], "tiny")
    assert [layout[chat.slot("box", i)]["visible"] for i in range(4)] == [True, True, False, False]
    assert layout[chat.slot("answer", 0)]["label"] == "tiny (base)"
    assert layout[chat.slot("answer", 1)]["label"] == f"{chat_env['dpo'].name} (dpo)"
    cleared = chat.clear([chat.BASE_VALUE], "tiny")
    assert (cleared["prompt"], cleared["message"]) == ("", "")
    assert [slot(cleared, i)[0]["visible"] for i in range(4)] == [True, False, False, False]
    assert all(slot(cleared, i)[1]["value"] == "" and slot(cleared, i)[2] == "" for i in range(4))


def test_tab_wiring(chat_env):
    with gr.Blocks() as demo:
        parts = chat.build(Page([], {}))
    [load] = parts.on_load
    assert load.fn.__wrapped__ is chat.restore  # answering by name (webui.named)
    assert load.outputs == [parts.components["base"], parts.components["columns"]]
    assert isinstance(load.inputs[0], gr.BrowserState)  # the picks this browser made last
    events = {fn.api_name: fn for fn in demo.fns.values()}
    assert "chat" in events
    cancellers = [fn.cancels for fn in demo.fns.values() if fn.is_cancel_function]
    assert cancellers == [[events["chat"]._id]]  # Clear also cancels a stream in progress
    full = app.build_app(chat_env["sft"].path.parent.parent)
    labels = {getattr(b, "label", None) for b in full.blocks.values()}
    assert {"base model", "run", "prompt"} <= labels


def test_a_base_model_folder_outside_the_allowed_folders_is_refused(runs_env, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ALLOWED_DIRS", "")
    outside = tmp_path_factory.mktemp("outside-model")
    out = run_send(str(outside), [chat.BASE_VALUE])[-1]
    assert out["message"].startswith(f"❌ {outside} is outside the folders the web UI may use")
