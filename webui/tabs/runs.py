"""The Runs tab: a table of every run folder with each stage's own final metrics, curves of several
runs overlaid, a run's config and log, delete with confirmation (the confirm step deletes only the
run its first step asked about in the same session: a direct call of it deletes nothing)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import plotly.graph_objects as go

from engine.runs.folder import RunFolder, list_runs
from webui import charts, runinfo, samples_view
from webui.log_box import log_box
from webui.named import by_name
from webui.tabs import Event, Page, Tab

HEADERS = ["run", "stage", "model", "dataset", "state", "warnings", "duration", "step", "final metrics"]
# Shares of the table's width: sized by their content, the columns ran past a 1440 px window (the
# final metrics alone wanted 1000 px); fixed shares keep every column in view, long cells wrapping.
COLUMN_WIDTHS = ["18%", "5%", "12%", "9%", "7%", "13%", "7%", "5%", "24%"]
DEFAULT_OVERLAY = "loss"
VIEW_LOG_LINES = 200


def summary_row(run: RunFolder) -> list[str]:
    """One table row: what the run is, how far it got, its health warnings (codes; the Train tab has
    the messages) and the last value of each of its stage's summary metrics."""
    cfg, status = run.raw_config(), run.status()
    section = lambda name: cfg.get(name) if isinstance(cfg.get(name), dict) else {}  # noqa: E731
    codes = [str(w["code"]) for w in status.health_warnings(beside_error=False)]
    return [run.name, str(cfg.get("stage", "?")), str(section("model").get("name_or_path", "?")),
            str(section("data").get("dataset", "?")), status.label, "⚠️ " + ", ".join(codes) if codes else "",
            runinfo.fmt_seconds(status.duration()), f"{status.step}/{status.max_steps or '?'}",
            runinfo.fmt_metrics(run.summary())]


def runs_table() -> list[list[str]]:
    return [summary_row(run) for run in list_runs()]


def refresh() -> dict[str, Any]:
    """{"table", "overlay_runs", "view_run"} (the two run pickers' choices), rebuilt from disk."""
    names = runinfo.run_names()
    return {"table": runs_table(), "overlay_runs": gr.update(choices=names), "view_run": gr.update(choices=names)}


def _records(names: list[str] | None) -> dict[str, list[dict]]:
    out = {}
    for name in names or []:
        try:
            out[name] = runinfo.run_path(name).metrics()
        except FileNotFoundError:
            continue  # deleted since the list was drawn
    return out


def metric_choices(names: list[str] | None, current: str | None) -> Any:
    """Metrics any selected run logged; keeps the current one if still available."""
    choices = charts.metric_names(r for records in _records(names).values() for r in records)
    value = current if current in choices else (DEFAULT_OVERLAY if DEFAULT_OVERLAY in choices else
                                                (choices[0] if choices else None))
    return gr.update(choices=choices, value=value)


def overlay(names: list[str] | None, metric: str | None) -> go.Figure:
    return charts.overlay_chart(_records(names), metric or "")


def view(name: str | None) -> dict[str, Any]:
    """{"config" (config.yaml), "log" (the end of engine.log), "sample_step" (the slider), "samples"} of a run."""
    try:
        run = runinfo.run_path(name)
    except FileNotFoundError as e:
        return {"config": "", "log": str(e), "samples": samples_view.samples_html([])}
    records = run.samples()
    try:  # shown as it is, undecodable bytes marked: the text is for reading, not for loading
        config = run.config_file.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        config = f"# {run.config_file} is unreadable: {e}"
    return {"config": config, "log": run.log_tail(VIEW_LOG_LINES),
            "sample_step": gr.update(**samples_view.slider_update(records)),
            "samples": samples_view.samples_html(records, None, samples_view.run_probes(run))}


def ask_delete(name: str | None) -> dict[str, Any]:
    """First step of a delete: show the confirm buttons (or say why not), and keep the run pending
    for confirm_delete. Answers {"confirm_row", "message", "pending" (the run)}."""
    hidden = gr.update(visible=False)
    try:
        run = runinfo.run_path(name)
    except FileNotFoundError as e:
        return {"confirm_row": hidden, "message": f"❌ {e}", "pending": None}
    if run.status().engine_alive:
        return {"confirm_row": hidden, "message": f"❌ {name} is still running: stop it on the Train tab first.",
                "pending": None}
    return {"confirm_row": gr.update(visible=True), "pending": run.name,
            "message": f"Delete **{name}** and all its files (adapter, checkpoints, logs)? This cannot be undone."}


def _unconfirmed(name: str | None, pending: str | None) -> str:
    """Why confirm_delete must not act ('' when it may)."""
    if not pending:
        return "❌ Nothing to confirm: pick a run and press Delete run… first."
    if name != pending:
        return "❌ Nothing to confirm: the picked run changed since Delete run… was pressed; press it again."
    return ""


def confirm_delete(name: str | None, compared: list[str] | None = None, pending: str | None = None) -> dict[str, Any]:
    """Delete the run ask_delete asked about in this session (``pending``, a gr.State kept on the
    server, which an API call cannot set), if it is still the one picked: a direct call deletes nothing.
    Answers {"confirm_row", "message", "table", "overlay_runs", "view_run", "pending"}; the deleted run
    also leaves the overlay selection."""
    message = _unconfirmed(name, pending)
    if not message:
        try:
            message = runinfo.delete_run(pending)
        except (FileNotFoundError, PermissionError) as e:
            message = f"❌ {e}"
    names = runinfo.run_names()
    return {"confirm_row": gr.update(visible=False), "message": message, "table": runs_table(),
            "overlay_runs": gr.update(choices=names, value=[n for n in compared or [] if n in names]),
            "view_run": gr.update(choices=names, value=name if name in names else None), "pending": None}


def cancel_delete() -> dict[str, Any]:
    """{"confirm_row", "message", "pending"}: nothing pending any more."""
    return {"confirm_row": gr.update(visible=False), "message": "", "pending": None}


def build(page: Page) -> Tab:
    refresh_btn = gr.Button("Refresh", scale=0)
    table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, wrap=True, label="runs",
                         column_widths=COLUMN_WIDTHS, elem_classes=["wb-runs"])
    with gr.Row():
        overlay_runs = gr.Dropdown(label="runs to compare", multiselect=True, choices=[], scale=3)
        overlay_metric = gr.Dropdown(label="metric", choices=[], value=None, scale=1)
    overlay_plot = gr.Plot(show_label=False, value=charts.empty_figure("", "pick runs to compare"))
    with gr.Row():
        view_run = gr.Dropdown(label="run to view or delete", choices=[], value=None, scale=3)
        delete_btn = gr.Button("Delete run…", variant="stop", scale=0)
    with gr.Row(visible=False) as confirm_row:
        confirm_btn = gr.Button("Yes, delete it", variant="stop")
        cancel_btn = gr.Button("Cancel")
    delete_msg = gr.Markdown()
    with gr.Row():
        config_view = gr.Code(language="yaml", label="config.yaml", interactive=False)
        log_view = log_box(f"engine.log (last {VIEW_LOG_LINES} lines)", 20, "wb-runs-log")
    with gr.Accordion("The run's answers to its sample prompts", open=True):
        sample_step = gr.Slider(0, 1, value=0, step=1, label="step", elem_id="wb-runs-sample-step")
        samples_box = gr.HTML(samples_view.samples_html([]), elem_id="wb-runs-samples")

    listing = {"table": table, "overlay_runs": overlay_runs, "view_run": view_run}
    refresh_btn.click(**by_name(refresh, listing), api_name="refresh_runs")
    overlay_runs.change(metric_choices, [overlay_runs, overlay_metric], overlay_metric)
    gr.on([overlay_runs.change, overlay_metric.change], overlay, [overlay_runs, overlay_metric], overlay_plot)
    viewed = {"config": config_view, "log": log_view, "sample_step": sample_step, "samples": samples_box}
    view_run.change(inputs=view_run, **by_name(view, viewed))
    sample_step.input(samples_view.show_run, [view_run, sample_step], samples_box, show_progress="hidden")
    pending = gr.State(None)  # the run Delete run… asked about, on the server: the confirm step acts on it alone
    confirm = {"confirm_row": confirm_row, "message": delete_msg, "pending": pending}
    delete_btn.click(inputs=view_run, **by_name(ask_delete, confirm))
    confirm_btn.click(inputs=[view_run, overlay_runs, pending], **by_name(confirm_delete, {**confirm, **listing}))
    cancel_btn.click(**by_name(cancel_delete, confirm))
    return Tab({"table": table, "overlay_runs": overlay_runs, "view_run": view_run},
               on_load=[Event(**by_name(refresh, listing))], on_select=Event(**by_name(refresh, listing)))
