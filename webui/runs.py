"""The Runs tab's handlers: a table of every run folder, curve overlays, config/log view, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from engine.runs import health
from engine.runs.folder import list_runs, raw_config, read_metrics, read_status
from engine.runs.process import engine_running
from webui import charts, runinfo

# Final values worth comparing across runs, in TRL's names (eval_ keys from the eval lines).
SUMMARY_METRICS = ("loss", "eval_loss", "rewards/accuracies", "rewards/margins", "eval_rewards/accuracies")
HEADERS = ["run", "stage", "model", "dataset", "state", "warnings", "duration", "step", *SUMMARY_METRICS]
DEFAULT_OVERLAY = "loss"
VIEW_LOG_LINES = 200


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def warning_marker(status: dict) -> str:
    """The codes of a run's health warnings (engine.runs.health), flagged; the Train tab has the messages."""
    codes = [str(w["code"]) for w in health.status_warnings(status, beside_error=False)]
    return "⚠️ " + ", ".join(codes) if codes else ""


def summary_row(path: Path) -> list[str]:
    """One table row: what the run is, how far it got and its last value of each summary metric."""
    cfg, status, records = raw_config(path), read_status(path), read_metrics(path)
    section = lambda name: cfg.get(name) if isinstance(cfg.get(name), dict) else {}  # noqa: E731
    step = f"{status.get('step') or 0}/{status.get('max_steps') or '?'}"
    return [path.name, str(cfg.get("stage", "?")), str(section("model").get("name_or_path", "?")),
            str(section("data").get("dataset", "?")), runinfo.effective_state(status), warning_marker(status),
            runinfo.fmt_seconds(runinfo.duration(status)), step,
            *[_fmt(runinfo.last_value(records, key)) for key in SUMMARY_METRICS]]


def runs_table() -> list[list[str]]:
    return [summary_row(p) for p in list_runs()]


def refresh() -> list:
    """[table, overlay runs choices, view run choices], rebuilt from disk."""
    names = runinfo.run_names()
    return [runs_table(), gr.update(choices=names), gr.update(choices=names)]


def _records(names: list[str] | None) -> dict[str, list[dict]]:
    out = {}
    for name in names or []:
        try:
            out[name] = read_metrics(runinfo.run_path(name))
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


def view(name: str | None) -> tuple[str, str]:
    """(config.yaml, end of engine.log) of a run."""
    try:
        path = runinfo.run_path(name)
    except FileNotFoundError as e:
        return "", str(e)
    return (path / "config.yaml").read_text(encoding="utf-8"), runinfo.log_tail(path, VIEW_LOG_LINES)


def ask_delete(name: str | None) -> tuple[Any, str]:
    """First step of a delete: show the confirm buttons (or say why not)."""
    try:
        path = runinfo.run_path(name)
    except FileNotFoundError as e:
        return gr.update(visible=False), f"❌ {e}"
    if engine_running(read_status(path)):
        return gr.update(visible=False), f"❌ {name} is still running: stop it on the Train tab first."
    return gr.update(visible=True), f"Delete **{name}** and all its files (adapter, checkpoints, logs)? This cannot be undone."


def confirm_delete(name: str | None, compared: list[str] | None = None) -> list:
    """[confirm row, message, table, overlay runs, view run] after deleting; the deleted run also
    leaves the overlay selection."""
    try:
        message = runinfo.delete_run(name)
    except (FileNotFoundError, PermissionError) as e:
        message = f"❌ {e}"
    names = runinfo.run_names()
    return [gr.update(visible=False), message, runs_table(),
            gr.update(choices=names, value=[n for n in compared or [] if n in names]),
            gr.update(choices=names, value=None)]


def cancel_delete() -> tuple[Any, str]:
    return gr.update(visible=False), ""
