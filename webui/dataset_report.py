"""What the Datasets tab shows of a check: the validation report (Markdown) and the preview of rows
as the model sees them (HTML). Pure rendering of engine.data.check's results: no Gradio, no I/O."""

from __future__ import annotations

import html

from engine.data import check as dc


def _count(n: int, noun: str = "row") -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _rows(numbers: list) -> str:
    """'row 3' or 'rows 3, 9, … and 12 more'."""
    return ("row " if len(numbers) == 1 else "rows ") + dc.listed(numbers)


def _pair_findings(report: dc.Report) -> list[str]:
    lines = []
    if report.identical:
        lines.append(f"- ❌ identical chosen and rejected answers in {_count(len(report.identical))}: nothing to "
                     f"prefer, so training refuses them; fix or remove {_rows(report.identical)}")
    if report.contradictory:
        pairs = [f"{a} & {b}" for a, b in report.contradictory]
        lines.append(f"- ⚠️ the same prompt with the two answers the other way round in "
                     f"{_count(len(pairs), 'pair')} of rows, so one row of each pair is swapped: {_rows(pairs)}")
    if report.swapped:
        good, bad = report.score_columns
        lines.append(f"- ⚠️ the rejected answer scores higher ({bad} > {good}) in {_count(len(report.swapped))}: "
                     f"chosen and rejected are possibly swapped in {_rows(report.swapped)}")
    return lines


def _token_findings(report: dc.Report) -> list[str]:
    cutoff, lines = report.cutoff_len, []
    if report.emptied:
        lines.append(f"- ⚠️ the prompt alone reaches cutoff_len = {cutoff} tokens in "
                     f"{_count(len(report.emptied))}: training drops them, since truncation would leave no answer "
                     f"token. Raise data.cutoff_len on the Train tab or shorten {_rows(report.emptied)}")
        if len(report.emptied) == report.measured:
            lines[-1] += ". **With this cutoff_len no checked row would be trained.**"
    if report.truncated:
        lines.append(f"- ℹ️ longer than cutoff_len = {cutoff} tokens: {_count(len(report.truncated))}, whose "
                     f"answers lose their end ({_rows(report.truncated)})")
    if report.lengths:
        lines += ["", "| tokens | min | median | max |", "|---|---|---|---|"]
        names = {"sequence": "prompt + longest answer"}
        lines += [f"| {names.get(k, k)} | " + " | ".join(map(str, dc.length_stats(v))) + " |"
                  for k, v in report.lengths.items()]
    return lines


def report_markdown(report: dc.Report, note: str = "") -> str:
    """The validation report: errors (blocking) first, each with its row numbers, then warnings."""
    lines = [f"- ❌ {p}" for p in report.problems]
    lines += [f"- ❌ row {number}: {message}" for number, message in report.row_errors]
    if report.error_rows > len(report.row_errors):
        lines.append(f"- ❌ … and {report.error_rows - len(report.row_errors)} more rows with errors")
    lines += _pair_findings(report)
    lines += [f"- {'ℹ️' if level == 'info' else '⚠️'} {text}" for level, text in dc.label_findings(report)]
    if report.rows and not report.problems and report.lengths.get("chosen") and not report.score_columns:
        lines.append("- ℹ️ swap check: without score columns (such as score_chosen / score_rejected) only rows "
                     "that contradict each other are found")
    if note:
        lines.append(f"- ℹ️ {note}")
    elif 0 < report.measured < report.rows:
        lines.append(f"- ℹ️ token counts and truncation cover the first {report.measured} of {report.rows} rows")
    lines += _token_findings(report)
    if report.ok:
        warned = any(line.startswith("- ⚠️") for line in lines)
        head = f"✅ **{_count(report.rows)}, no errors.**" + (" Warnings do not block registration." if warned else "")
    else:
        bad = report.error_rows + len(report.identical)
        head = f"❌ **{_count(report.rows)}, {bad} with errors: fix them before registering.**" if bad or \
            not report.problems else "❌ **Fix these before registering:**"
    return "\n".join([head, "", *lines])


_PRE = ("white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;font-size:12px;"
        "margin:2px 0 10px;padding:6px 8px;border:1px solid var(--border-color-primary);border-radius:6px")
_CUT = "text-decoration:line-through;opacity:.55;background:rgba(220,38,38,.12)"


def _esc(text: str) -> str:
    # Entities for { } $ too: gr.HTML fills a JS/Handlebars template, which must not see data as syntax.
    return html.escape(text).replace("{", "&#123;").replace("}", "&#125;").replace("$", "&#36;")


def _answer_html(key: str, answer: dc.RenderedAnswer, cutoff: int | None) -> str:
    head = f"{key} · {answer.tokens} tokens"
    body = _esc(answer.kept)
    if answer.cut:
        head += f" · ✂ truncated at cutoff_len {cutoff}: {answer.kept_tokens} of {answer.tokens} kept"
        body += f'<b>✂</b><span style="{_CUT}" title="cut off by cutoff_len">{_esc(answer.cut)}</span>'
    return f"<div><b>{_esc(head)}</b></div><div style=\"{_PRE}\">{body}</div>"


def preview_html(rendered: list[dc.RenderedRow], cutoff: int | None, note: str = "") -> str:
    """Rows as the model sees them: template applied, token counts, the cut-off part struck out."""
    parts = [f"<p>ℹ️ {_esc(note)}</p>"] if note else []
    for row in rendered:
        parts.append(f"<h4 style=\"margin:12px 0 4px\">Row {row.number}</h4>")
        if row.error:
            parts.append(f"<p>❌ {_esc(row.error)}</p>")
            continue
        if row.dropped:
            parts.append(f"<p>✂ <b>dropped from training</b>: the prompt alone is {row.prompt_tokens} tokens, "
                         f"at least cutoff_len {cutoff}, so no answer token would remain.</p>")
        parts.append(f"<div><b>prompt · {row.prompt_tokens} tokens</b></div>"
                     f"<div style=\"{_PRE}\">{_esc(row.prompt)}</div>")
        parts += [_answer_html(key, answer, cutoff) for key, answer in row.answers.items()]
    return "".join(parts)
