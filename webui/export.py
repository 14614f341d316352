"""The Export tab: merge a finished run's adapter into its base model and save a standalone
Hugging Face model under saves/exports/ (engine.models.export), and list the exports made so far.

The export runs in the event's worker thread (other events keep running); engine.models.export imports
torch only inside export_run, so building the page stays light.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from engine.config import policy_stages
from engine.models.export import ExportError, export_path, fmt_size, list_exports
from engine.models.loader import run_weights
from engine.paths import exports_root
from webui import runinfo

HEADERS = ["export", "source run", "stage", "kind", "base model", "size", "exported"]


def exports_table() -> list[list[str]]:
    return [[e["name"], e.get("source_run", "?"), str(e.get("stage", "?")), e.get("kind", "?"),
             Path(e.get("base_model", "?")).name, fmt_size(e["size"]), e.get("exported") or
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["mtime"]))] for e in list_exports()]


def refresh(run: str | None = None) -> list:
    """[run picker, exports table], re-read from disk."""
    choices = runinfo.finished_runs(policy_stages())
    names = [name for _label, name in choices]
    return [gr.update(choices=choices, value=run if run in names else (names[0] if names else None)),
            exports_table()]


def destination(run: str | None, name: str | None) -> str:
    """Where Export would write, shown under the name box as one types."""
    if not run and not name:
        return ""
    try:
        return f"→ `{export_path((name or '').strip() or run)}`"
    except ExportError as e:
        return f"❌ {e}"


def export(run: str | None, name: str | None) -> Iterator[tuple[str, Any]]:
    """Export the run: yields (status message, exports table) before and after the work."""
    from engine.models.export import export_run, folder_size

    try:
        run_dir = runinfo.run_path(run)
        run_weights(run_dir)  # a clear error before the wait when there is nothing to export
        dest = export_path((name or "").strip() or run_dir.name)
        if dest.exists():
            raise ExportError(f"{dest} already exists: pick another name or delete it first")
        yield (f"⏳ Exporting **{run_dir.name}** to `{dest}`: loading the base model, merging the adapter, "
               "saving (about a minute for a few hundred million parameters on a CPU)…", gr.update())
        start = time.monotonic()
        folder = export_run(run_dir, dest)
    except (ValueError, OSError) as e:  # ExportError, no weights, run deleted meanwhile, disk full
        yield f"❌ {e}", exports_table()
        return
    yield (f"✅ Exported **{run_dir.name}** to `{folder}` ({fmt_size(folder_size(folder))}, "
           f"{time.monotonic() - start:.0f} s). Load it with `AutoModelForCausalLM.from_pretrained(\"{folder}\")`.",
           exports_table())


def build_tab() -> dict[str, Any]:
    """The tab's components and events, in the current Blocks/Tab context."""
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

    gr.on([run.change, name.change], destination, [run, name], where, show_progress="hidden")
    export_btn.click(export, [run, name], [status, table], api_name="export")
    refresh_btn.click(refresh, run, [run, table], api_visibility="private")
    return {"run": run, "name": name, "status": status, "table": table, "on_load": (refresh, [run, table])}
