"""The model's answers to the sample prompts (samples.jsonl, engine.stages.samples), as the Train and
Runs tabs show them: per prompt, the answer at step 0 beside the answer at a chosen step (the latest
by default), each marked when it loops, is empty or ran to the token limit."""

from __future__ import annotations

import html

from engine.data.probes import Probe, ProbeError, parse_probes
from engine.data.registry import DatasetError, dataset_folder, read_registry
from engine.runs import degeneration
from engine.runs.folder import RunFolder
from webui import runinfo

_PRE = "white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;font-size:12px;margin:0"
_BAD = "color:#b91c1c;font-weight:600"


def steps(records: list[dict]) -> list[int]:
    return sorted({r["step"] for r in records})


def at_or_before(records: list[dict], step: float | None) -> int | None:
    """The sampled step shown for a slider value: the last one at or before it (the latest for None)."""
    found = steps(records)
    if not found:
        return None
    if step is None:
        return found[-1]
    return max((s for s in found if s <= step), default=found[0])


def _badge(record: dict) -> str:
    marks = []
    if not record["answer"].strip():
        marks.append(f"<span style='{_BAD}'>empty</span>")
    elif degeneration.loops(record["answer"]):
        marks.append(f"<span style='{_BAD}'>loops</span>")
    marks.append(f"{record.get('tokens', '?')} tokens" + ("" if record.get("ended", True) else
                                                            f" · <span style='{_BAD}'>cut at the limit</span>"))
    if isinstance(record.get("kl"), (int, float)):
        marks.append(f"log-ratio to the reference {record['kl']:.2f} nats/token")
    return " · ".join(marks)


def _cell(record: dict | None) -> str:
    if record is None:
        return "<td>-</td>"
    return (f"<td style='vertical-align:top'><pre style='{_PRE}'>{html.escape(record['answer']) or '(empty)'}</pre>"
            f"<div style='font-size:11px;opacity:.75'>{_badge(record)}</div></td>")


def run_probes(run: RunFolder | None) -> dict[str, Probe]:
    """The task probes of the dataset the run's sample prompts come from (its eval set, else its
    training set), as declared now in the run's dataset folder."""
    data = (run.raw_config().get("data") or {}) if run else {}
    if not isinstance(data, dict):  # a hand-edited config.yaml: the run's views still show
        return {}
    try:
        info = read_registry(dataset_folder(data.get("dataset_dir"))).get(data.get("eval_dataset") or
                                                                          data.get("dataset") or "", {})
        return parse_probes(info.get("probes"))
    except (DatasetError, ProbeError, TypeError, AttributeError):  # a name or an entry of the wrong type
        return {}


def accuracy_html(probes: dict[str, Probe], records: list[dict], first: int, shown: int) -> str:
    """Each probe's alignment accuracy on the sample answers at step 0 and at the shown step."""
    if not probes:
        return ""
    at = {s: [r["answer"] for r in records if r["step"] == s] for s in (first, shown)}
    parts = [f"<b>{html.escape(n)}</b> {p.accuracy(at[first]):.0%} → {p.accuracy(at[shown]):.0%}"
             for n, p in probes.items()]
    return (f"<p style='font-size:13px'>Alignment accuracy on these answers (the dataset's task probes; degenerate "
            f"answers fail), step {first} → step {shown}: {' · '.join(parts)}</p>")


def samples_html(records: list[dict], step: float | None = None, probes: dict[str, Probe] | None = None) -> str:
    """A table: per prompt, its answer at step 0 and at the shown step; above it, the alignment
    accuracy of the given probes at both."""
    shown = at_or_before(records, step)
    if shown is None:
        return "<p>No sample answers yet: the run answers its sample prompts at step 0 and about ten times a run " \
               "(the <code>samples</code> settings).</p>"
    first = steps(records)[0]
    rows = []
    for prompt in dict.fromkeys(r["prompt"] for r in records):
        start = next((r for r in records if r["prompt"] == prompt and r["step"] == first), None)
        now = next((r for r in records if r["prompt"] == prompt and r["step"] == shown), None)
        rows.append(f"<tr><td style='vertical-align:top;width:24%'><pre style='{_PRE}'>{html.escape(prompt)}</pre></td>"
                    f"{_cell(start)}{_cell(now)}</tr>")
    head = f"<tr><th>prompt</th><th>step {first} (the starting model)</th><th>step {shown}</th></tr>"
    return (accuracy_html(probes or {}, records, first, shown) +
            f"<table style='width:100%;table-layout:fixed'>{head}{''.join(rows)}</table>")


def show_run(name: str | None, step: float | None) -> str:
    """A run's sample answers at the step a slider points to (the run named by a dropdown)."""
    try:
        run = runinfo.run_path(name)
    except FileNotFoundError:
        return samples_html([])
    return samples_html(run.samples(), step, run_probes(run))


def slider_update(records: list[dict]) -> dict:
    """The step slider's range and value: every sampled step, the latest shown."""
    found = steps(records)
    return {"minimum": 0, "maximum": max(found[-1] if found else 0, 1), "value": found[-1] if found else 0}
