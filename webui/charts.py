"""Plotly figures from metric records (the lines of a run's metrics.jsonl).

Pure functions: records in, figures out; nothing here reads files or knows about Gradio. Metric
names are TRL's, verbatim, so a chart's legend matches TRL's documentation; an eval curve is the
same key with ``eval_`` in front and is drawn dashed in the train curve's colour.
"""

from __future__ import annotations

import math
from typing import Iterable

import plotly.graph_objects as go

from engine.config.stages import LEARNING_RATE, LOSS, STAGES, stage_of

WAITING = "waiting for the first metrics"
EVAL_PREFIX = "eval_"
# Bookkeeping columns: plotted against, or not worth a curve of their own.
NOT_METRICS = ("step", "epoch")
# Chosen/rejected read at a glance in green/red; the rest take plotly's default palette in order.
FIXED_COLOURS = {"chosen": "#2ca02c", "rejected": "#d62728"}
PALETTE = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")

# A run's charts are its stage's (engine.config.stages); the Train tab has a plot slot for each chart of
# the stage with the most, and hides the slots a stage does not use.
CHART_SLOTS = max(len(stage.charts) for stage in STAGES.values())
DEFAULT_CHARTS = (LOSS, LEARNING_RATE)  # a run of a stage this version does not know


def _number(value) -> float | None:
    """A finite float, or None for anything a chart cannot draw (missing, text, nan, inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def series(records: Iterable[dict], key: str) -> tuple[list, list]:
    """(steps, values) of one metric, skipping records that lack it."""
    xs, ys = [], []
    for record in records:
        y = _number(record.get(key))
        if y is not None:
            xs.append(record.get("step"))
            ys.append(y)
    return xs, ys


def colour(key: str, index: int) -> str:
    for word, value in FIXED_COLOURS.items():
        if word in key:
            return value
    return PALETTE[index % len(PALETTE)]


def empty_figure(title: str = "", message: str = WAITING) -> go.Figure:
    """A blank chart that says why it is blank, so an idle run never looks broken."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                       font={"size": 14, "color": "#888"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


def _layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.01}, height=300, margin={"l": 50, "r": 10, "t": 40, "b": 40},
                      hovermode="x unified", legend={"orientation": "h", "y": -0.2},
                      template="plotly_white")
    return fig


def line_chart(records: list[dict], keys: Iterable[str], title: str) -> go.Figure:
    """Each key as a solid train curve, plus its eval_ twin as a dashed curve in the same colour."""
    fig = go.Figure()
    for i, key in enumerate(keys):
        for name, dash, mode in ((key, "solid", "lines"), (EVAL_PREFIX + key, "dash", "lines+markers")):
            xs, ys = series(records, name)
            if xs:
                fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode=mode,
                                         line={"color": colour(key, i), "dash": dash}))
    if not fig.data:
        return empty_figure(title)
    fig.update_xaxes(title_text="step")
    return _layout(fig, title)


def run_charts(records: list[dict], stage: str) -> list[go.Figure | None]:
    """One entry per plot slot: the stage's charts in its order, then None for the unused slots; an
    optional chart none of whose metrics the run logged is None too."""
    known = stage_of(stage)
    charts = known.charts if known else DEFAULT_CHARTS
    logged = set(metric_names(records))
    figures = [None if chart.optional and not logged & {*chart.keys, *(EVAL_PREFIX + k for k in chart.keys)}
               else line_chart(records, chart.keys, chart.title) for chart in charts]
    return figures + [None] * (CHART_SLOTS - len(figures))


def overlay_chart(runs: dict[str, list[dict]], metric: str) -> go.Figure:
    """One metric from several runs on one chart, one trace per run (named by run)."""
    fig = go.Figure()
    dash = "dash" if metric.startswith(EVAL_PREFIX) else "solid"
    for i, (name, records) in enumerate(runs.items()):
        xs, ys = series(records, metric)
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines+markers" if dash == "dash" else "lines",
                                     line={"color": PALETTE[i % len(PALETTE)], "dash": dash}))
    if not fig.data:
        message = f"no {metric} points in the selected runs yet" if runs and metric else WAITING
        return empty_figure(metric or "", message)
    fig.update_xaxes(title_text="step")
    return _layout(fig, metric)


def metric_names(records: Iterable[dict]) -> list[str]:
    """Every plottable key in the records: train metrics first (in first-seen order), then eval_ ones."""
    seen: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key not in NOT_METRICS and _number(value) is not None:
                seen.setdefault(key, None)
    names = list(seen)
    return [k for k in names if not k.startswith(EVAL_PREFIX)] + [k for k in names if k.startswith(EVAL_PREFIX)]
