"""Look at a data file before it is registered: validate every row and render rows exactly as the
trainer will see them (engine.data.layouts detects the layout and builds the registry entry).

UI-free on purpose (the web UI's Datasets tab calls it; tests call it directly). Validation
converts rows with engine.data.to_conversation, the very function training uses, so a file that
passes here cannot fail conversion when a run starts. Token counts and truncation mirror TRL 1.16:
its SFT and DPO trainers tokenize ``prompt`` with the generation prompt and ``prompt + answer``
without, take the answer to start where the two token lists diverge, cut every sequence to
``max_length`` (= ``data.cutoff_len``) keeping the start, and drop rows whose prompt alone fills
``max_length`` (no answer token would be left to learn from).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any, Iterable

from jinja2 import TemplateError

from engine.data.registry import DatasetError, normalize_entry
from engine.data.rows import IdenticalAnswersError, to_conversation

SCORE_WORDS = ("score", "rating", "reward")
MAX_LISTED = 20   # row numbers listed per finding; the counts are always complete
TOKEN_CHECK_ROWS = 2000  # rows whose tokens an interactive check counts (~1 ms each); every row is validated
# How chat templates refuse a conversation: jinja's raise_exception (TemplateError), transformers' checks.
TEMPLATE_ERRORS = (TemplateError, ValueError, TypeError, KeyError, IndexError)


# ---- tokens, as TRL 1.16 counts them -------------------------------------------------------------


def _template_ids(tokenizer, messages: list[dict], **kwargs) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])


def _common_prefix(a, b) -> int:
    return sum(1 for _ in takewhile(lambda pair: pair[0] == pair[1], zip(a, b)))


def answer_keys(conversation: dict) -> list[str]:
    return [k for k in ("completion", "chosen", "rejected", "text") if k in conversation]


def _plain_ids(text: str, tokenizer) -> list[int]:
    """Plain text as TRL's SFT tokenizes it for language modelling: the text, then EOS."""
    ids = list(tokenizer(text)["input_ids"])
    eos = tokenizer.eos_token_id
    return ids + [eos] if eos is not None and (not ids or ids[-1] != eos) else ids


def tokenize_row(conversation: dict, tokenizer) -> tuple[int, dict[str, list[int]]]:
    """(prompt length, {answer key: prompt+answer token ids}) exactly as TRL's tokenize_fn builds them."""
    if "text" in conversation:
        return 0, {"text": _plain_ids(conversation["text"], tokenizer)}
    prompt_ids = _template_ids(tokenizer, conversation["prompt"], add_generation_prompt=True)
    full = {k: _template_ids(tokenizer, conversation["prompt"] + conversation[k]) for k in answer_keys(conversation)}
    return min(_common_prefix(prompt_ids, ids) for ids in full.values()), full


def render_text(conversation: dict, tokenizer) -> dict[str, str]:
    """Prompt and answer texts as ``trl.data_utils.apply_chat_template`` renders a conversational
    prompt/completion or prompt/chosen/rejected row (our prompts always end with a user turn)."""
    if "text" in conversation:
        return {"prompt": "", "text": tokenizer.decode(_plain_ids(conversation["text"], tokenizer))}
    prompt = tokenizer.apply_chat_template(conversation["prompt"], tokenize=False, add_generation_prompt=True)
    full = {k: tokenizer.apply_chat_template(conversation["prompt"] + conversation[k], tokenize=False)
            for k in answer_keys(conversation)}
    for text in full.values():  # some templates render the prompt alone differently: keep the shared start
        prompt = prompt[:_common_prefix(prompt, text)]
    return {"prompt": prompt, **{k: text[len(prompt):] for k, text in full.items()}}


# ---- validation ---------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything validate() found. Errors (``problems``, ``row_errors``, ``identical``) block
    registration because training would refuse the data; the rest are warnings and facts."""

    rows: int = 0
    problems: list[str] = field(default_factory=list)                 # file or mapping level
    row_errors: list[tuple[int, str]] = field(default_factory=list)   # (row number, message), first MAX_LISTED
    error_rows: int = 0                                               # all rows with an error
    identical: list[int] = field(default_factory=list)                # chosen == rejected
    contradictory: list[tuple[int, int]] = field(default_factory=list)  # same prompt, answers swapped
    swapped: list[int] = field(default_factory=list)                  # the score columns prefer rejected
    score_columns: tuple[str, str] | None = None
    emptied: list[int] = field(default_factory=list)                  # prompt alone >= cutoff_len: dropped
    truncated: list[int] = field(default_factory=list)                # answer partly cut
    lengths: dict[str, list[int]] = field(default_factory=dict)       # "prompt", answer keys, "sequence"
    labels: dict[bool, int] = field(default_factory=dict)             # unpaired rows: label -> rows
    measured: int = 0                                                 # rows whose tokens were counted
    cutoff_len: int | None = None

    @property
    def ok(self) -> bool:
        return self.rows > 0 and not (self.problems or self.error_rows or self.identical)


def score_columns(columns: Iterable[str]) -> tuple[str, str] | None:
    """A (chosen score, rejected score) column pair such as score_chosen/score_rejected, if the file has one."""
    columns = list(columns)
    for column in columns:
        low = column.lower()
        if "chosen" in low and any(word in low for word in SCORE_WORDS):
            partner = next((c for c in columns if c.lower() == low.replace("chosen", "rejected")), None)
            if partner:
                return column, partner
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def _check_pair(report: Report, number: int, row: dict, conv: dict, seen: dict) -> None:
    """Swap checks that need no guessing: the file's own scores, and the same prompt seen with the
    two answers the other way round (one of the two rows must be wrong)."""
    prompt = tuple((m["role"], m["content"]) for m in conv["prompt"])
    chosen, rejected = conv["chosen"][0]["content"].strip(), conv["rejected"][0]["content"].strip()
    if (prompt, rejected, chosen) in seen:
        report.contradictory.append((seen[(prompt, rejected, chosen)], number))
    seen.setdefault((prompt, chosen, rejected), number)
    if report.score_columns:
        good, bad = (row.get(c) for c in report.score_columns)
        if _is_number(good) and _is_number(bad) and bad > good:
            report.swapped.append(number)


def _measure(report: Report, number: int, conv: dict, tokenizer, cutoff_len: int) -> None:
    prompt_len, full = tokenize_row(conv, tokenizer)
    report.lengths.setdefault("prompt", []).append(prompt_len)
    for key, ids in full.items():
        report.lengths.setdefault(key, []).append(len(ids) - prompt_len)
    longest = max(len(ids) for ids in full.values())
    report.lengths.setdefault("sequence", []).append(longest)
    if prompt_len >= cutoff_len:
        report.emptied.append(number)
    elif longest > cutoff_len:
        report.truncated.append(number)


def _row_error(report: Report, number: int, message: str) -> None:
    report.error_rows += 1
    if len(report.row_errors) < MAX_LISTED:
        report.row_errors.append((number, message))


def validate(rows: Iterable[dict], entry: dict, tokenizer=None, cutoff_len: int | None = None,
             token_rows: int | None = None) -> Report:
    """Check every row the way training will read it. Row numbers are 1-based, as in the file.

    With a tokenizer and ``cutoff_len``, also count tokens and find rows that truncation empties
    (TRL drops them) or shortens, in the first ``token_rows`` rows (None: all; rendering the
    template costs ~1 ms a row, too slow for an interactive check of a big file). A chat template
    that refuses a row is an error: training would fail on it too.
    """
    report = Report(cutoff_len=cutoff_len)
    try:
        info = normalize_entry(entry)
    except DatasetError as e:
        report.problems.append(str(e))
        return report
    seen: dict = {}
    for number, row in enumerate(rows, 1):
        report.rows = number
        if number == 1 and info["ranking"]:
            report.score_columns = score_columns(row)
        try:
            conv = to_conversation(row, info, info["ranking"])
        except IdenticalAnswersError:
            report.identical.append(number)
            continue
        except DatasetError as e:
            _row_error(report, number, str(e))
            continue
        if info["ranking"]:
            _check_pair(report, number, row, conv, seen)
        if "label" in conv:
            report.labels[conv["label"]] = report.labels.get(conv["label"], 0) + 1
        if tokenizer is not None and cutoff_len and (token_rows is None or number <= token_rows):
            report.measured += 1
            try:
                _measure(report, number, conv, tokenizer, cutoff_len)
            except TEMPLATE_ERRORS as e:
                _row_error(report, number, f"the chat template cannot render this row: {e}")
    if report.rows == 0:
        report.problems.append("the file has no rows")
    return report


def label_findings(report: Report) -> list[tuple[str, str]]:
    """(level, text) on an unpaired (KTO) set's labels: KTO needs desirable and undesirable answers."""
    if not report.labels:
        return []
    good, bad = report.labels.get(True, 0), report.labels.get(False, 0)
    found = [("info", f"unpaired (KTO) rows: {good} desirable, {bad} undesirable")]
    if not (good and bad):
        found.append(("warning", "KTO learns from both desirable and undesirable answers, and this file has only "
                                 f"{'desirable' if good else 'undesirable'} ones"))
    return found


def listed(numbers: list) -> str:
    """'3, 9, 12' or '3, 9, … and 12 more': the first MAX_LISTED of a finding's rows."""
    more = f" … and {len(numbers) - MAX_LISTED} more" if len(numbers) > MAX_LISTED else ""
    return ", ".join(map(str, numbers[:MAX_LISTED])) + more


def length_stats(values: list[int]) -> tuple[int, int, int]:
    """(min, median, max) token counts."""
    return min(values), int(statistics.median(values)), max(values)


# ---- preview ------------------------------------------------------------------------------------


@dataclass
class RenderedAnswer:
    text: str          # the answer as the model sees it (template tokens included)
    kept: str          # the part that survives truncation
    cut: str           # the part cut off by cutoff_len
    tokens: int
    kept_tokens: int


@dataclass
class RenderedRow:
    number: int                                   # 1-based row number
    prompt: str = ""
    prompt_tokens: int = 0
    answers: dict[str, RenderedAnswer] = field(default_factory=dict)  # completion or chosen/rejected
    dropped: bool = False                         # prompt alone fills cutoff_len: training drops the row
    error: str = ""


def _split(text: str, ids: list[int], keep: int, tokenizer) -> RenderedAnswer:
    if keep >= len(ids):
        return RenderedAnswer(text, text, "", len(ids), len(ids))
    kept = tokenizer.decode(ids[:keep])
    cut = text[len(kept):] if text.startswith(kept) else tokenizer.decode(ids[keep:])
    return RenderedAnswer(text, kept, cut, len(ids), keep)


def render_row(number: int, conversation: dict, tokenizer, cutoff_len: int | None) -> RenderedRow:
    """One converted row as the trainer sees it: template applied, tokens counted, truncation marked."""
    texts = render_text(conversation, tokenizer)
    prompt_len, full = tokenize_row(conversation, tokenizer)
    answers = {}
    for key, ids in full.items():
        keep = max(0, min(len(ids), cutoff_len) - prompt_len) if cutoff_len else len(ids) - prompt_len
        answers[key] = _split(texts[key], ids[prompt_len:], keep, tokenizer)
    return RenderedRow(number, texts["prompt"], prompt_len, answers,
                       dropped=bool(cutoff_len) and prompt_len >= cutoff_len)


def preview(rows, entry: dict, tokenizer, cutoff_len: int | None, start: int = 1, count: int = 3) -> list[RenderedRow]:
    """Rows ``start``.. ``start + count - 1`` (1-based) rendered; a row that cannot be converted or
    rendered carries its error instead."""
    info, out, start = normalize_entry(entry), [], max(1, start)
    for number in range(start, min(start + count, len(rows) + 1)):
        try:
            conv = to_conversation(rows[number - 1], info, info["ranking"])
            out.append(render_row(number, conv, tokenizer, cutoff_len))
        except DatasetError as e:
            out.append(RenderedRow(number, error=str(e)))
        except TEMPLATE_ERRORS as e:
            out.append(RenderedRow(number, error=f"the chat template cannot render this row: {e}"))
    return out
