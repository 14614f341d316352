"""Look at a data file before it is registered: detect its layout, build its registry entry,
validate every row and render rows exactly as the trainer will see them.

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

from engine.data.registry import DEFAULT_COLUMNS, DEFAULT_TAGS, DatasetError, normalize_entry
from engine.data.rows import IdenticalAnswersError, to_conversation

# What the Datasets tab offers. "prompt-chosen-rejected" is stored as alpaca + ranking with explicit
# chosen/rejected columns, which LLaMA-Factory (and engine.data.rows) already understand.
FORMATS = ("alpaca", "sharegpt", "prompt-chosen-rejected")
ROLES = ("messages", "prompt", "query", "response", "chosen", "rejected", "system", "history")
ROLE_HELP = {
    "prompt": "the instruction or question", "query": "optional input appended to the prompt",
    "response": "the answer (for ranking data: a list [chosen, rejected])", "chosen": "the preferred answer",
    "rejected": "the dispreferred answer", "system": "optional system prompt",
    "history": "optional earlier [user, assistant] turns", "messages": "the list of conversation messages",
}
# Column names that usually hold each role, best guess first (compared case-insensitively).
COLUMN_HINTS = {
    "messages": ("conversations", "messages", "conversation", "dialog", "chat"),
    "chosen": ("chosen", "chosen_response", "response_chosen", "preferred", "better"),
    "rejected": ("rejected", "rejected_response", "response_rejected", "dispreferred", "worse"),
    "prompt": ("instruction", "prompt", "question", "problem", "input"),
    "query": ("input", "context"),
    "response": ("output", "response", "answer", "completion", "target"),
    "system": ("system", "system_prompt"),
    "history": ("history",),
}
SCORE_WORDS = ("score", "rating", "reward")
SAMPLE_ROWS = 20  # rows looked at to guess the layout
MAX_LISTED = 20   # row numbers listed per finding; the counts are always complete
# How chat templates refuse a conversation: jinja's raise_exception (TemplateError), transformers' checks.
TEMPLATE_ERRORS = (TemplateError, ValueError, TypeError, KeyError, IndexError)


@dataclass
class Detection:
    formatting: str            # one of FORMATS
    ranking: bool
    columns: dict[str, str]    # role -> file column, only roles the format uses
    tags: dict[str, str]       # sharegpt message keys and role names (empty otherwise)


def format_roles(formatting: str, ranking: bool) -> tuple[list[str], list[str]]:
    """(roles the format reads, roles that must be mapped). Alpaca ranking data needs either
    ``response`` holding [chosen, rejected] or both ``chosen`` and ``rejected``: see check_mapping."""
    if formatting == "sharegpt":
        pair = ["chosen", "rejected"] if ranking else []
        return ["messages", "system", *pair], ["messages", *pair]
    if formatting == "prompt-chosen-rejected":
        return ["prompt", "chosen", "rejected", "system"], ["prompt", "chosen", "rejected"]
    used = ["prompt", "query", "response", "system", "history"] + (["chosen", "rejected"] if ranking else [])
    return used, ["prompt"] if ranking else ["prompt", "response"]


def _pick(columns: list[str], role: str, taken: set[str]) -> str | None:
    by_lower = {c.lower(): c for c in columns if c not in taken}
    return next((by_lower[h] for h in COLUMN_HINTS[role] if h in by_lower), None)


def _values(rows: list[dict], column: str) -> list:
    return [row.get(column) for row in rows if row.get(column) is not None]


def _is_messages(values: list) -> bool:
    return bool(values) and all(isinstance(v, list) and v and isinstance(v[0], dict) for v in values)


def detect_tags(conversations: list) -> dict[str, str]:
    """The sharegpt keys and role names a file uses: ``from``/``value``/``human``/``gpt`` (LLaMA-Factory)
    or OpenAI-style ``role``/``content``/``user``/``assistant``."""
    messages = [m for conv in conversations for m in conv if isinstance(m, dict)]
    keys = {k for m in messages for k in m}
    role_tag = next((k for k in ("from", "role") if k in keys), DEFAULT_TAGS["role_tag"])
    content_tag = next((k for k in ("value", "content", "text") if k in keys), DEFAULT_TAGS["content_tag"])
    roles = {m.get(role_tag) for m in messages}
    # A role may be absent from the sample (ranking prompts end with the user): then the style decides.
    openai = role_tag == "role"
    user = next((r for r in ("human", "user") if r in roles), "user" if openai else DEFAULT_TAGS["user_tag"])
    assistant = next((r for r in ("gpt", "assistant", "model", "bot") if r in roles),
                     "assistant" if openai else DEFAULT_TAGS["assistant_tag"])
    return {"role_tag": role_tag, "content_tag": content_tag, "user_tag": user, "assistant_tag": assistant,
            "system_tag": "system"}


def detect(rows: list[dict], columns: list[str]) -> Detection:
    """Guess formatting, ranking and the column of each role from the column names and the first rows."""
    sample, taken, found = rows[:SAMPLE_ROWS], set(), {}
    messages = _pick(columns, "messages", taken) or next(
        (c for c in columns if _is_messages(_values(sample, c))), None)
    if messages:
        taken.add(messages)
    for role in ("chosen", "rejected", "prompt", "query", "response", "system", "history"):
        found[role] = _pick(columns, role, taken)
        if found[role]:
            taken.add(found[role])
    has_pair = bool(found["chosen"] and found["rejected"])
    if messages:
        formatting, ranking, tags = "sharegpt", has_pair, detect_tags(_values(sample, messages))
        found["messages"] = messages
    else:
        tags = {}
        pairs = _values(sample, found["response"]) if found["response"] else []
        ranking = has_pair or (bool(pairs) and all(isinstance(v, list) and len(v) == 2 for v in pairs))
        plain_pairs = has_pair and not (found["query"] or found["history"])
        formatting = "prompt-chosen-rejected" if plain_pairs else "alpaca"
    used, _ = format_roles(formatting, ranking)
    return Detection(formatting, ranking, {r: found[r] for r in used if found.get(r)}, tags)


def check_mapping(formatting: str, ranking: bool, columns: dict[str, str | None], file_columns: list[str]) -> list[str]:
    """Problems with a column mapping, each naming the role and the column (empty list: fine)."""
    if formatting not in FORMATS:
        return [f"formatting {formatting!r} is not one of {', '.join(FORMATS)}"]
    used, required = format_roles(formatting, ranking)
    mapped = {role: columns.get(role) for role in used if columns.get(role)}
    errors = [f"{role}: choose the column that holds {ROLE_HELP[role]}" for role in required if role not in mapped]
    if formatting == "alpaca" and ranking and not mapped.get("response") and \
            not (mapped.get("chosen") and mapped.get("rejected")):
        errors.append("ranking: map either response (a column holding [chosen, rejected]) or both chosen and rejected")
    for role, column in mapped.items():
        if column not in file_columns:
            errors.append(f"{role}: column {column!r} is not in the file; its columns are {', '.join(file_columns)}")
    seen: dict[str, str] = {}
    for role, column in mapped.items():
        if column in seen:
            errors.append(f"column {column!r} is mapped to both {seen[column]} and {role}; "
                          "each role needs its own column")
        seen[column] = role
    return errors


def build_entry(file_name: str, formatting: str, ranking: bool, columns: dict[str, str | None],
                file_columns: list[str], tags: dict | None = None, description: str = "") -> dict:
    """The registry entry for a mapping. A role left unmapped whose LLaMA-Factory default column
    (e.g. ``input`` for query) exists in the file is stored as null, or the default would read it."""
    stored = "sharegpt" if formatting == "sharegpt" else "alpaca"
    ranking = ranking or formatting == "prompt-chosen-rejected"
    used, _ = format_roles(formatting, ranking)
    entry: dict[str, Any] = {"file_name": file_name}
    if stored != "alpaca":
        entry["formatting"] = stored
    if ranking:
        entry["ranking"] = True
    mapping = {}
    for role in dict.fromkeys([*used, *DEFAULT_COLUMNS[stored]]):
        column = columns.get(role) if role in used else None
        if column:
            mapping[role] = column
        elif DEFAULT_COLUMNS[stored].get(role) in file_columns:
            mapping[role] = None
    entry["columns"] = mapping
    if stored == "sharegpt" and tags:
        entry["tags"] = dict(tags)
    if description and description.strip():
        entry["description"] = description.strip()
    return entry


def display_format(info: dict) -> str:
    """How the Datasets tab names a registry entry's layout (prompt-chosen-rejected is stored as alpaca)."""
    cols, defaults = info.get("columns") or {}, DEFAULT_COLUMNS["alpaca"]
    extras = [cols.get(role) not in (None, defaults[role]) for role in ("query", "history")]  # mapped off default
    if info.get("formatting", "alpaca") == "alpaca" and info.get("ranking") and cols.get("chosen") \
            and cols.get("rejected") and not any(extras):
        return "prompt-chosen-rejected"
    return info.get("formatting", "alpaca")


# ---- tokens, as TRL 1.16 counts them -------------------------------------------------------------


def _template_ids(tokenizer, messages: list[dict], **kwargs) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])


def _common_prefix(a, b) -> int:
    return sum(1 for _ in takewhile(lambda pair: pair[0] == pair[1], zip(a, b)))


def answer_keys(conversation: dict) -> list[str]:
    return [k for k in ("completion", "chosen", "rejected") if k in conversation]


def tokenize_row(conversation: dict, tokenizer) -> tuple[int, dict[str, list[int]]]:
    """(prompt length, {answer key: prompt+answer token ids}) exactly as TRL's tokenize_fn builds them."""
    prompt_ids = _template_ids(tokenizer, conversation["prompt"], add_generation_prompt=True)
    full = {k: _template_ids(tokenizer, conversation["prompt"] + conversation[k]) for k in answer_keys(conversation)}
    return min(_common_prefix(prompt_ids, ids) for ids in full.values()), full


def render_text(conversation: dict, tokenizer) -> dict[str, str]:
    """Prompt and answer texts as ``trl.data_utils.apply_chat_template`` renders a conversational
    prompt/completion or prompt/chosen/rejected row (our prompts always end with a user turn)."""
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
        if tokenizer is not None and cutoff_len and (token_rows is None or number <= token_rows):
            report.measured += 1
            try:
                _measure(report, number, conv, tokenizer, cutoff_len)
            except TEMPLATE_ERRORS as e:
                _row_error(report, number, f"the chat template cannot render this row: {e}")
    if report.rows == 0:
        report.problems.append("the file has no rows")
    return report


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
