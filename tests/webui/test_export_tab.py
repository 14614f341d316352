"""The Export tab's handlers: the run picker, the destination preview, an export streamed as
status messages, refusals, and the exports table."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from engine.models.export import list_exports
from tests.helpers import make_run, make_weight_run
from webui import export


@pytest.fixture
def export_env(runs_env, tiny_model) -> dict[str, Path]:
    (runs_env / "models").mkdir()
    (runs_env / "models" / "tiny").symlink_to(tiny_model)
    return {"sft": make_weight_run(runs_env / "runs", tiny_model, "sft", seed=21),
            "running": make_run("sft", state="running", stamp="20200101-000000")}


def test_picker_offers_finished_runs_and_the_table_starts_empty(export_env):
    run, table = export.refresh()
    assert run["choices"] == [(f"{export_env['sft'].name} · sft · completed", export_env["sft"].name)]
    assert run["value"] == export_env["sft"].name and table == []


def test_destination_preview(export_env, runs_env):
    assert export.destination("r1", "") == f"→ `{runs_env / 'exports' / 'r1'}`"
    assert export.destination("r1", "mine") == f"→ `{runs_env / 'exports' / 'mine'}`"
    assert export.destination("r1", "../up").startswith("❌ export name")


def test_export_streams_status_then_lists_the_export(export_env, runs_env):
    name = export_env["sft"].name
    (first, _), (last, table) = list(export.export(name, "  sql-merged "))
    dest = runs_env / "exports" / "sql-merged"
    assert first.startswith(f"⏳ Exporting **{name}** to `{dest}`")
    assert last.startswith(f"✅ Exported **{name}** to `{dest}` (") and "MB" in last
    assert (dest / "model.safetensors").is_file()
    assert table[0][:4] == ["sql-merged", name, "sft", "merged LoRA adapter"]
    assert [e["name"] for e in list_exports()] == ["sql-merged"]
    (again, _), = list(export.export(name, "sql-merged"))
    assert again.startswith("❌ ") and "already exists" in again


def test_refusals_are_messages(export_env):
    (msg, _), = list(export.export(export_env["running"].name, ""))
    assert msg.startswith("❌ run ") and "no saved adapter or model" in msg
    (msg, _), = list(export.export(None, ""))
    assert msg.startswith("❌ no run selected")
    (msg, _), = list(export.export(export_env["sft"].name, ".hidden"))
    assert msg.startswith("❌ export name")


def test_tab_wiring(export_env):
    with gr.Blocks() as demo:
        parts = export.build_tab()
    refresh, outputs = parts["on_load"]
    assert refresh is export.refresh and outputs == [parts["run"], parts["table"]]
    assert "export" in {fn.api_name for fn in demo.fns.values()}
