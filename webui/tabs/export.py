"""The Export tab: merge a finished run's adapter into its base model and save a standalone Hugging
Face model under saves/exports/ (engine.models.export), and list the exports made so far.

An export is a job of the run (engine.runs.jobs), like `workbench export`: Export writes its folder
and starts `python -m engine.job JOB_DIR`; the tab follows its status and log, also after a reload
or a server restart. Building the page imports neither torch nor transformers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr

from engine.config import policy_stages
from engine.models.export import ExportError, check_destination, export_path, fmt_size, list_exports
from engine.models.loader import run_weights
from engine.paths import exports_root
from engine.runs.jobs import JobFolder, create_job, start_job
from engine.runs.status import State
from webui import runinfo
from webui.forms import refreshed
from webui.named import by_name
from webui.tabs import Event, Page, Tab

HEADERS = ["export", "source run", "stage", "kind", "base model", "size", "exported"]
KIND = "export"  # the job kind
POLL_SECONDS = 1.0


def exports_table() -> list[list[str]]:
    return [[e["name"], e.get("source_run", "?"), str(e.get("stage", "?")), e.get("kind", "?"),
             Path(e.get("base_model", "?")).name, fmt_size(e["size"]), e.get("exported") or
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["mtime"]))] for e in list_exports()]


def refresh(run: str | None = None) -> dict[str, Any]:
    """{"run" (the picker), "table" (the exports)}, re-read from disk; the run kept, else one being
    exported, else the newest."""
    choices = runinfo.finished_runs(policy_stages())
    names = [name for _label, name in choices]
    return {"run": refreshed(choices, run, runinfo.pick_run(names, run, KIND)), "table": exports_table()}


def destination(run: str | None, name: str | None) -> str:
    """Where Export would write, shown under the name box as one types."""
    if not run and not name:
        return ""
    try:
        return f"→ `{export_path((name or '').strip() or run)}`"
    except ExportError as e:
        return f"❌ {e}"


def job_status(job: JobFolder | None) -> str:
    """One line about the run's newest export: running, or how it ended."""
    if job is None:
        return ""
    status = job.status()
    if status.engine_alive:
        return (f"⏳ exporting **{job.run.name}** ({status.duration() or 0:.0f} s): loading the base model, merging "
                "the adapter, saving (about a minute for a few hundred million parameters on a CPU)…")
    if status.state != State.COMPLETED:
        return f"❌ {status.error or status.shown} (full output: `{job.log_file}`)"
    result = job.result() or {}
    note = f" {result['note'][:1].upper()}{result['note'][1:]}." if result.get("note") else ""  # e.g. QLoRA's merge
    return (f"✅ exported **{job.run.name}** to `{result.get('folder')}` ({fmt_size(result.get('size') or 0)}, "
            f"{status.duration() or 0:.0f} s).{note} Load it with `AutoModelForCausalLM.from_pretrained"
            f"(\"{result.get('folder')}\")`.")


def export(run: str | None, name: str | None) -> dict[str, Any]:
    """Check, then start the export job: {"status", "table" (the exports, when nothing started), "timer"}."""
    try:
        folder = runinfo.run_path(run)
        run_weights(folder)  # a clear error before the wait when there is nothing to export
        if runinfo.job_running(runinfo.latest_job(run, KIND)):
            raise ExportError(f"{run} is being exported already; wait for it")
        dest = check_destination(folder, export_path((name or "").strip() or folder.name))
    except (ValueError, OSError) as e:  # ExportError, no weights, run deleted meanwhile
        return {"status": f"❌ {e}", "table": exports_table(), "timer": gr.Timer(active=False)}
    job = create_job(folder, KIND, {"out": str(dest)})
    proc = start_job(job)
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return {"status": job_status(job), "timer": gr.Timer(active=True)}


def poll(run: str | None) -> dict[str, Any]:
    """While an export runs: {"status", "timer"}, and "table" (the exports) once it ended."""
    job = runinfo.latest_job(run, KIND)
    if runinfo.job_running(job):
        return {"status": job_status(job), "timer": gr.Timer(active=True)}
    return {"status": job_status(job), "table": exports_table(), "timer": gr.Timer(active=False)}


def follow(run: str | None) -> dict[str, Any]:
    """A run picked: its newest export's status, followed while it runs: {"status", "timer"}."""
    job = runinfo.latest_job(run, KIND)
    return {"status": job_status(job), "timer": gr.Timer(active=runinfo.job_running(job))}


def build(page: Page) -> Tab:
    gr.Markdown(f"Merge a finished run's LoRA adapter into its base model (a full fine-tune is copied) and save "
                f"a standalone model, loadable with plain transformers, under `{exports_root()}`.")
    with gr.Row():
        run = gr.Dropdown(label="run", choices=[], value=None, scale=3, elem_id="wb-export-run")
        with gr.Column(scale=2):
            name = gr.Textbox(label="folder name (optional; default: the run's name)", max_lines=1)
            where = gr.Markdown()
        export_btn = gr.Button("Export", variant="primary", scale=0)
    status = gr.Markdown()
    with gr.Row():
        gr.Markdown("### Exports")
        refresh_btn = gr.Button("Refresh", scale=0)
    table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, wrap=True, label="exports")
    timer = gr.Timer(POLL_SECONDS, active=False)

    job = {"status": status, "table": table, "timer": timer}
    listing = {"run": run, "table": table}
    gr.on([run.change, name.change], destination, [run, name], where, show_progress="hidden")
    run.change(inputs=run, **by_name(follow, {"status": status, "timer": timer}), show_progress="hidden")
    export_btn.click(inputs=[run, name], **by_name(export, job), api_name="export")
    timer.tick(inputs=run, **by_name(poll, job), show_progress="hidden")
    refresh_btn.click(inputs=run, **by_name(refresh, listing), api_visibility="private")
    return Tab({"run": run, "name": name, "status": status, "table": table, "timer": timer},
               on_load=[Event(**by_name(refresh, listing))], on_select=Event(inputs=[run], **by_name(refresh, listing)))
