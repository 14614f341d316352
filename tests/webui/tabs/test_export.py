"""The Export tab's handlers: the run picker, the destination preview, an export job followed to
its end, refusals, and the exports table."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import pytest

from engine.models.export import list_exports
from engine.runs.jobs import list_jobs
from tests.helpers import make_run, make_weight_run
from webui.tabs import Page, export


@pytest.fixture
def export_env(runs_env, tiny_model) -> dict[str, Path]:
    (runs_env / "models").mkdir()
    (runs_env / "models" / "tiny").symlink_to(tiny_model)
    return {"sft": make_weight_run(runs_env / "runs", tiny_model, "sft", seed=21),
            "running": make_run("sft", state="running", stamp="20200101-000000")}


def test_picker_offers_finished_runs_and_the_table_starts_empty(export_env):
    out = export.refresh()
    run, table = out["run"], out["table"]
    assert run["choices"] == [(f"{export_env['sft'].name} · sft · completed", export_env["sft"].name)]
    assert run["value"] == export_env["sft"].name and table == []


def test_destination_preview(export_env, runs_env):
    assert export.destination("r1", "") == f"→ `{runs_env / 'exports' / 'r1'}`"
    assert export.destination("r1", "mine") == f"→ `{runs_env / 'exports' / 'mine'}`"
    assert export.destination("r1", "../up").startswith("❌ export name")


def finish(run_name: str, timeout: float = 120) -> dict:
    """Poll the export as the tab's timer does, until the timer switches itself off."""
    deadline = time.time() + timeout
    while (out := export.poll(run_name))["timer"].active:
        assert time.time() < deadline, "the export did not end"
        time.sleep(0.3)
    return out


def test_an_export_is_a_job_followed_to_the_exports_table(export_env, runs_env):
    name = export_env["sft"].name
    started = export.export(name, "  sql-merged ")
    dest = runs_env / "exports" / "sql-merged"
    assert started["status"].startswith(f"⏳ exporting **{name}**") and started["timer"].active
    assert "table" not in started  # the table is redrawn once the export ended
    [job] = list_jobs(export_env["sft"], "export")
    assert job.spec() == {"kind": "export", "settings": {"out": str(dest)}}
    done = finish(name)
    last, table, timer = done["status"], done["table"], done["timer"]
    assert last.startswith(f"✅ exported **{name}** to `{dest}` (") and "MB" in last, job.log_file.read_text()
    assert "LoRA adapter merged into the full-precision base" in last  # what was merged into what
    assert (dest / "model.safetensors").is_file() and not timer.active
    assert table[0][:4] == ["sql-merged", name, "sft", "merged LoRA adapter"]
    assert [e["name"] for e in list_exports()] == ["sql-merged"]
    again = export.export(name, "sql-merged")
    assert again["status"].startswith("❌ ") and "already exists" in again["status"] and not again["timer"].active
    assert len(list_jobs(export_env["sft"], "export")) == 1  # a refused export starts no job


def test_refusals_are_messages(export_env):
    msg = export.export(export_env["running"].name, "")["status"]
    assert msg.startswith("❌ run ") and "no saved adapter or model" in msg
    assert export.export(None, "")["status"].startswith("❌ no run selected")
    assert export.export(export_env["sft"].name, ".hidden")["status"].startswith("❌ export name")


def test_tab_wiring(export_env):
    with gr.Blocks() as demo:
        parts = export.build(Page([], {}))
    [load] = parts.on_load
    assert load.fn.__wrapped__ is export.refresh  # answering by name (webui.named)
    assert load.outputs == [parts.components["run"], parts.components["table"]]
    assert "export" in {fn.api_name for fn in demo.fns.values()}
