"""Plotly figures from metric records (the lines of a run's metrics.jsonl).

Pure functions: records in, figures out; nothing here reads files or knows about Gradio. Metric
names are TRL's, verbatim, so a chart's legend matches TRL's documentation; an eval curve is the
same key with ``eval_`` in front and is drawn dashed in the train curve's colour.
"""

from __future__ import annotations

import math
from typing import Iterable

import plotly.graph_objects as go

WAITING = "waiting for the first metrics"
EVAL_PREFIX = "eval_"
# Bookkeeping columns: plotted against, or not worth a curve of their own.
NOT_METRICS = ("step", "epoch")
# Chosen/rejected read at a glance in green/red; the rest take plotly's default palette in order.
FIXED_COLOURS = {"chosen": "#2ca02c", "rejected": "#d62728"}
PALETTE = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")

# (title, train keys) for each chart of a run; eval_ twins are added when present.
LOSS = ("loss", ("loss",))
LEARNING_RATE = ("learning rate", ("learning_rate",))
# DPO family (TRL's names)
REWARDS = ("rewards (chosen vs rejected)", ("rewards/chosen", "rewards/rejected"))
ACCURACIES = ("rewards/accuracies", ("rewards/accuracies",))
MARGINS = ("rewards/margins", ("rewards/margins",))
LOGPS = ("log-probabilities (chosen vs rejected)", ("logps/chosen", "logps/rejected"))
LOSS_TERMS = ("terms of the loss", ("dpop/penalty", "nll_loss", "log_odds_ratio", "log_odds_chosen", "kl"))
# Reward model (TRL's RewardTrainer)
RM_ACCURACY = ("accuracy (chosen scored above rejected)", ("accuracy",))
RM_MARGIN = ("margin (chosen - rejected score)", ("margin",))
RM_REWARDS = ("scores (min / mean / max)", ("min_reward", "mean_reward", "max_reward"))
# PPO (engine/stages/ppo.py, named after TRL's former PPO trainer); eval_ = greedy held-out answers
PPO_SCORE = ("reward-model score of the answers", ("objective/scores",))
PPO_KL = ("KL to the reference (nats per answer)", ("objective/kl",))
PPO_LOSSES = ("policy and value loss", ("loss/policy_avg", "loss/value_avg"))
PPO_ENTROPY = ("entropy (per token)", ("policy/entropy_avg",))
PPO_CLIP = ("clip fraction and approx. KL", ("policy/clipfrac_avg", "val/clipfrac_avg", "policy/approxkl_avg"))
PPO_LENGTH = ("answer length (tokens)", ("completions/mean_length",))
PPO_KL_COEF = ("kl_coef", ("objective/kl_coef",))
RUN_CHARTS = (LOSS, LEARNING_RATE, REWARDS, ACCURACIES, MARGINS, LOGPS, LOSS_TERMS,
              RM_ACCURACY, RM_MARGIN, RM_REWARDS,
              PPO_SCORE, PPO_KL, PPO_LOSSES, PPO_ENTROPY, PPO_CLIP, PPO_LENGTH, PPO_KL_COEF)
# Which of RUN_CHARTS a stage logs; the others stay hidden for it.
STAGE_CHARTS = {
    "sft": (LOSS, LEARNING_RATE),
    "rm": (LOSS, LEARNING_RATE, RM_ACCURACY, RM_MARGIN, RM_REWARDS),
    "ppo": (PPO_SCORE, PPO_KL, LOSS, PPO_LOSSES, PPO_ENTROPY, PPO_CLIP, PPO_LENGTH, LEARNING_RATE, PPO_KL_COEF),
    "dpo": (LOSS, LEARNING_RATE, REWARDS, ACCURACIES, MARGINS, LOGPS, LOSS_TERMS),
}
# Charts only some settings of a stage fill (each DPO loss logs its own terms): hidden while empty.
OPTIONAL_CHARTS = (LOSS_TERMS, PPO_KL_COEF)


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
    """One entry per RUN_CHARTS chart: a figure, or None where the stage never logs that metric."""
    shown = STAGE_CHARTS.get(stage, (LOSS, LEARNING_RATE))
    logged = set(metric_names(records))
    return [line_chart(records, keys, title) if (title, keys) in shown and not (
                (title, keys) in OPTIONAL_CHARTS and not logged & {*keys, *(EVAL_PREFIX + k for k in keys)})
            else None for title, keys in RUN_CHARTS]


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
