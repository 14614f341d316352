"""One unreadable file in one run folder breaks nothing else: the web UI still builds, every tab's
listing and the followed run's panel still answer, `workbench runs` lists every run, and the
broken file is named. Each case damages one file of a finished run beside an intact one."""

from __future__ import annotations

import pytest

from engine.cli import main
from engine.runs import queue
from tests.helpers import dpo_metrics, make_run
from webui import runinfo
from webui.app import build_app
from webui.tabs import chat, evaluate, export, runs, train

NOT_UTF8 = b"caf\xe9 \xff\xfe"
DAMAGE = {  # file -> what ends up in it
    "status.json": b'{"state": "runn',
    "config.yaml": b"stage: dpo\nname: x\n  bad: [\n",
    "config.yaml (not UTF-8)": b"stage: dpo\nname: " + NOT_UTF8 + b"\n",
    "status.json (a field of the wrong type)": b'{"state": "running", "pid": "12", "started": "yesterday"}',
    "config.yaml (a section of the wrong shape)": b"stage: dpo\nname: x\ndata: [1, 2]\n",
    "config.yaml (a value of the wrong type)": b"stage: dpo\nname: x\ndata: {dataset: [1], dataset_dir: 5}\n",
    "metrics.jsonl": b'{"step": 1, "loss": 0.7}\n' + NOT_UTF8 + b'\n{"step": 2, "lo',
    "engine.log": b"INFO engine: start\n" + NOT_UTF8 * 100 + b"\n",
    "samples.jsonl": b'{"step": 0, "prompt": ' + NOT_UTF8 + b"\n[1, 2]\n",
}


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request, runs_env):
    good = make_run("dpo", "completed", name="good", metrics=dpo_metrics(), stamp="20260101-000001")
    bad = make_run("dpo", "completed", name="bad", metrics=dpo_metrics(), stamp="20260101-000002",
                   log="INFO engine: start\n")
    (bad.path / request.param.split(" ")[0]).write_bytes(DAMAGE[request.param])
    return good, bad, request.param.split(" ")[0]


def test_the_ui_still_builds_and_every_listing_answers(damaged):
    good, bad, file = damaged
    build_app(None)
    table = runs.runs_table()
    assert [row[0] for row in table] == [bad.name, good.name]
    if file == "status.json":
        assert table[0][4] == "unreadable: status.json"
        assert "status.json is unreadable" in train.status_markdown(bad.name)
    runs.view(bad.name)
    train.refresh(bad.name, {})
    chat.refresh()
    evaluate.refresh()
    export.refresh()
    assert runinfo.attach_candidate() in (None, bad.name, good.name)
    assert queue.waiting_runs() == []


def test_the_cli_lists_every_run_and_names_the_file(damaged, capsys):
    good, bad, file = damaged
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert good.name in out and bad.name in out
    if file in ("status.json", "config.yaml"):
        named = (f"{bad.path / file}", f"unreadable: {file}", "bad config: data")  # the file, or the key
        assert any(text in out for text in named)
