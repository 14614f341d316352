"""The Evaluate tab's results, drawn from an evaluation's result (engine.inference.evaluate): a
summary, a table and a bar chart of the compared models, and their answers side by side. Pure
functions: a result in, Gradio values out."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from engine.inference.evaluate import BASELINE, table_headers, table_rows
from webui import charts


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def summary_markdown(result: dict) -> str:
    s = result["settings"]
    lines = [f"**{result['run']}** ({result['stage']}) on `{s['dataset']}` · {result['created']} · "
             f"{s['prompts'] or 0} prompts, up to {s['max_new_tokens']} new tokens · "
             f"reward model: {s['reward_run'] or 'none'}"]
    pref = result.get("preference")
    if pref:
        how = f"DPO implicit reward, β={pref['beta']}, reference `{pref['reference']}`" if pref["kind"] == "implicit_reward" \
            else "reward model scores"
        lines.append(f"**Preference accuracy {pref['accuracy']:.0%}** on {pref['pairs']} held-out pairs ({how}) · "
                     f"margin {_fmt(pref['margin'])} · chosen {_fmt(pref['chosen'])} · "
                     f"rejected {_fmt(pref['rejected'])}")
    lines += [f"ℹ️ {note}" for note in result.get("notes", [])]
    return "\n\n".join(lines)


def results_frame(result: dict) -> pd.DataFrame:
    """Rows = models; columns = RM score, win rate vs SFT, probe fractions, length."""
    return pd.DataFrame([[_fmt(c) for c in row] for row in table_rows(result)], columns=table_headers(result))


def results_chart(result: dict) -> go.Figure:
    """Win rate against the SFT model's answers and each probe fraction, per model, as bars."""
    gen = result.get("generation")
    if not gen:
        return charts.empty_figure("", "no generation comparison in these results")
    labels_ = list(gen["models"])
    fig = go.Figure()
    keys = [(f"win rate vs {BASELINE}", "win_rate"), *((p, p) for p in result["settings"]["probes"])]
    for i, (name, key) in enumerate(keys):
        values = [gen["models"][label][key] for label in labels_]
        if any(v is not None for v in values):
            fig.add_trace(go.Bar(x=labels_, y=values, name=name, marker_color=charts.PALETTE[i % len(charts.PALETTE)]))
    fig.update_layout(barmode="group", height=320, template="plotly_white", yaxis={"range": [0, 1]},
                      title={"text": "held-out answers: win rate and task probes", "x": 0.01},
                      margin={"l": 50, "r": 10, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.2})
    return fig


def answers_frame(result: dict) -> pd.DataFrame:
    """Prompt x model: each model's answer, with its RM score when there is one."""
    gen = result.get("generation")
    if not gen:
        return pd.DataFrame(columns=["prompt"])
    rows = []
    for i, prompt in enumerate(gen["prompts"]):
        row = [prompt]
        for m in gen["models"].values():
            score = f"\n\n[RM {m['scores'][i]:.3g}]" if m.get("scores") else ""
            row.append((m["answers"][i] or "(empty)") + score)
        rows.append(row)
    return pd.DataFrame(rows, columns=["prompt", *gen["models"]])


def show(result: dict | None) -> dict[str, Any]:
    """{"summary", "table", "chart", "answers"} for saved results (or their absence)."""
    if result is None:
        return {"summary": "No results for this run yet: pick the settings and press **Evaluate**.",
                "table": pd.DataFrame(columns=["model"]), "chart": charts.empty_figure("", "no results yet"),
                "answers": pd.DataFrame(columns=["prompt"])}
    return {"summary": summary_markdown(result), "table": results_frame(result), "chart": results_chart(result),
            "answers": answers_frame(result)}
