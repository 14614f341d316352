"""Which layout a data file is in, and the registry entry that reads it: detected from the column
names and what the first rows hold, so a user's own file registers with no mapping by hand.

The layouts are the field's: LLaMA-Factory's alpaca and sharegpt (plain, ranking and KTO), TRL's
dataset types (standard and conversational; preference with an explicit or implicit prompt,
prompt/completion, unpaired rows with a label, plain text), UltraFeedback-binarized and Anthropic
HH transcripts. ``LAYOUTS`` tries them in order, most specific first; each either fits or says what
the file lacks for it, so a file that fits none gets one message listing every layout tried.
Entries for LLaMA-Factory's layouts are plain LLaMA-Factory entries; the others use the "trl"
formatting (engine.data.registry), which only the workbench reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from engine.config.formats import (
    ALPACA,
    FORMATS,
    LLAMAFACTORY_TAGS,
    OFFERED,
    OPENAI_TAGS,
    PROMPT_CHOSEN_REJECTED,
    SHAREGPT,
    TRL,
    stored,
)
from engine.data.conversations import is_transcript
from engine.data.registry import compact_entry, default_tags

ROLES = ("messages", "prompt", "query", "response", "chosen", "rejected", "system", "history", "kto_tag", "text")
ROLE_HELP = {
    "prompt": "the instruction or question", "query": "optional input appended to the prompt",
    "response": "the answer (alpaca ranking data: a list [chosen, rejected])", "chosen": "the preferred answer",
    "rejected": "the dispreferred answer", "system": "optional system prompt",
    "history": "optional earlier [user, assistant] turns", "messages": "the list of conversation messages",
    "kto_tag": "the label of an unpaired (KTO) row: true for a desirable answer, false for an undesirable one",
    "text": "plain text, learned as it is (no prompt)",
}
# Column names that usually hold each role, best guess first (compared case-insensitively).
COLUMN_HINTS = {
    "messages": ("conversations", "messages", "conversation", "dialog", "chat"),
    "chosen": ("chosen", "chosen_response", "response_chosen", "preferred", "better"),
    "rejected": ("rejected", "rejected_response", "response_rejected", "dispreferred", "worse"),
    "prompt": ("instruction", "prompt", "question", "problem", "query", "input"),
    "query": ("input", "context"),
    "response": ("output", "response", "answer", "completion", "target"),
    "system": ("system", "system_prompt"),
    "history": ("history",),
    "kto_tag": ("label", "kto_tag", "desirable", "is_desirable"),
    "text": ("text", "content", "document"),
}
SAMPLE_ROWS = 20  # rows looked at to guess the layout


@dataclass
class Detection:
    formatting: str            # one of engine.config.formats.OFFERED
    ranking: bool
    columns: dict[str, str]    # role -> file column, only roles the format uses
    tags: dict[str, str]       # message keys and role names (sharegpt and trl; empty otherwise)
    layout: str = ""           # what the file was recognised as, in words ("" when nothing fitted)
    tried: list[str] = field(default_factory=list)  # "layout: what the file lacks for it", when nothing fitted


def format_roles(formatting: str, ranking: bool) -> tuple[list[str], list[str]]:
    """(roles the format reads, roles that must be mapped). Alpaca ranking data needs either
    ``response`` holding [chosen, rejected] or both ``chosen`` and ``rejected``, and "trl" data one
    of its row types: see check_mapping."""
    pair = ["chosen", "rejected"] if ranking else []
    unpaired = [] if ranking else ["kto_tag"]
    if formatting == SHAREGPT:
        return ["messages", "system", *pair, *unpaired], ["messages", *pair]
    if formatting == PROMPT_CHOSEN_REJECTED:
        return ["prompt", "chosen", "rejected", "system"], ["prompt", "chosen", "rejected"]
    if formatting == TRL:
        return (["prompt", *pair], pair) if ranking else (["messages", "prompt", "response", "kto_tag", "text"], [])
    used = ["prompt", "query", "response", "system", "history", *pair, *unpaired]
    return used, ["prompt"] if ranking else ["prompt", "response"]


# ---- what a column holds ----------------------------------------------------------------------


def _values(rows: list[dict], column: str) -> list:
    return [row.get(column) for row in rows if row.get(column) is not None]


def _roles_of(messages: list[dict]) -> set:
    return {m.get("role", m.get("from")) for m in messages}


def holds(values: list) -> str:
    """What a column's sample values are: "transcript" (HH), "text", "label" (booleans),
    "conversation" (message lists with a user turn), "answers" (message lists of assistant turns
    only), "pair" (two answers: strings or message objects), "message" (one message object),
    "turns" (a list of [user, assistant] pairs) or "other"."""
    if not values:
        return "other"
    if all(isinstance(v, str) for v in values):
        return "transcript" if all(is_transcript(v) for v in values) else "text"
    if all(isinstance(v, bool) for v in values):
        return "label"
    if all(isinstance(v, dict) for v in values):
        return "message"
    if not all(isinstance(v, list) for v in values):
        return "other"
    if all(v and all(isinstance(m, dict) for m in v) for v in values):
        roles = set().union(*(_roles_of(v) for v in values)) - {None}
        if roles & {"user", "human"}:
            return "conversation"
        if roles and roles <= {"assistant", "gpt", "model", "bot"}:
            return "answers" if not all(len(v) == 2 for v in values) else "pair"
        return "pair" if all(len(v) == 2 for v in values) else "other"
    if all(len(v) == 2 and all(isinstance(x, str) for x in v) for v in values):
        return "pair"
    if all(all(isinstance(t, list) and len(t) == 2 for t in v) for v in values):
        return "turns"
    return "other"


def detect_tags(conversations: list) -> dict[str, str]:
    """The message keys and role names a file uses: ``from``/``value``/``human``/``gpt`` (LLaMA-Factory)
    or OpenAI-style ``role``/``content``/``user``/``assistant``."""
    conversations = [c if isinstance(c, list) else [c] for c in conversations]
    messages = [m for conv in conversations for m in conv if isinstance(m, dict)]
    keys = {k for m in messages for k in m}
    role_tag = next((k for k in ("from", "role") if k in keys), LLAMAFACTORY_TAGS["role_tag"])
    content_tag = next((k for k in ("value", "content", "text") if k in keys), LLAMAFACTORY_TAGS["content_tag"])
    roles = {m.get(role_tag) for m in messages}
    # A role may be absent from the sample (ranking prompts end with the user): then the style decides.
    openai = role_tag == "role"
    user = next((r for r in ("human", "user") if r in roles), "user" if openai else LLAMAFACTORY_TAGS["user_tag"])
    assistant = next((r for r in ("gpt", "assistant", "model", "bot") if r in roles),
                     "assistant" if openai else LLAMAFACTORY_TAGS["assistant_tag"])
    style = OPENAI_TAGS if openai else LLAMAFACTORY_TAGS
    return {"role_tag": role_tag, "content_tag": content_tag, "user_tag": user, "assistant_tag": assistant,
            "observation_tag": style["observation_tag"], "function_tag": style["function_tag"],
            "system_tag": "system"}


# ---- the layouts, most specific first ----------------------------------------------------------


class File:
    """The sample rows and columns a detector looks at, with what each column holds."""

    def __init__(self, rows: list[dict], columns: list[str]):
        self.rows, self.columns = rows[:SAMPLE_ROWS], list(columns)
        self.kinds = {c: holds(_values(self.rows, c)) for c in self.columns}

    def named(self, role: str, kinds: tuple[str, ...], exclude: tuple = ()) -> str | None:
        """The column whose name hints at ``role`` and that holds one of ``kinds``."""
        by_lower = {c.lower(): c for c in self.columns if c not in exclude and self.kinds[c] in kinds}
        return next((by_lower[h] for h in COLUMN_HINTS[role] if h in by_lower), None)

    def holding(self, kinds: tuple[str, ...], exclude: tuple = ()) -> str | None:
        """The first column holding one of ``kinds``, whatever its name."""
        return next((c for c in self.columns if c not in exclude and self.kinds[c] in kinds), None)

    def tags(self, *columns: str | None) -> dict:
        return detect_tags([v for c in columns if c for v in _values(self.rows, c)])


Fit = "Detection | str"  # a detector's answer: the detection, or what the file lacks for its layout
ANSWER = ("text", "message")


def _pair(f: File, kinds: tuple[str, ...]) -> tuple[str, str] | str:
    """The (chosen, rejected) columns when both hold one of ``kinds``, else what is wrong with them."""
    chosen, rejected = f.named("chosen", kinds), f.named("rejected", kinds)
    if chosen and rejected:
        return chosen, rejected
    present = [c for c in f.columns if c.lower() in COLUMN_HINTS["chosen"] + COLUMN_HINTS["rejected"]]
    if not present:
        return "no chosen/rejected columns"
    held = ", ".join(f"{c} holds {f.kinds[c]}" for c in present)
    return f"chosen/rejected should hold {' or '.join(kinds)} ({held})"


def sharegpt_ranking(f: File) -> Fit:
    messages = f.named("messages", ("conversation",)) or f.holding(("conversation",))
    if not messages:
        return "no column of conversations (message lists with a user turn)"
    pair = _pair(f, ANSWER)
    if isinstance(pair, str):
        return pair
    columns = {"messages": messages, "chosen": pair[0], "rejected": pair[1]}
    if f.named("system", ("text",)):
        columns["system"] = f.named("system", ("text",))
    return Detection(SHAREGPT, True, columns, f.tags(messages, *pair),
                     "LLaMA-Factory sharegpt ranking (a conversation + chosen/rejected messages)")


def trl_conversational_pair(f: File) -> Fit:
    pair = _pair(f, ("conversation", "answers"))
    if isinstance(pair, str):
        return pair
    prompt = f.named("prompt", ("text", "conversation"), exclude=pair)
    explicit = any(f.kinds[c] == "answers" for c in pair)
    if explicit and not prompt:
        return "chosen/rejected hold only the answers but there is no prompt column"
    columns = {"chosen": pair[0], "rejected": pair[1], **({"prompt": prompt} if prompt else {})}
    scored = any("score" in c.lower() or "rating" in c.lower() for c in f.columns)
    name = ("UltraFeedback-binarized style (prompt, chosen/rejected conversations, scores)" if scored and prompt
            else "TRL conversational preference, " + ("explicit prompt" if explicit else
                                                      "implicit prompt (the shared messages are the prompt)"))
    return Detection(TRL, True, columns, f.tags(*pair, prompt if prompt and f.kinds[prompt] != "text" else None),
                     name)


def prompt_chosen_rejected(f: File) -> Fit:
    pair = _pair(f, ANSWER + ("transcript",))
    if isinstance(pair, str):
        return pair
    prompt = f.named("prompt", ("text",), exclude=pair)
    if not prompt:
        return "no prompt column of text (instruction, prompt, question, ...)"
    query = f.named("query", ("text",), exclude=(*pair, prompt))
    history = f.named("history", ("turns",))
    system = f.named("system", ("text",))
    formatting = ALPACA if query or history else PROMPT_CHOSEN_REJECTED
    columns = {"prompt": prompt, "chosen": pair[0], "rejected": pair[1], "query": query, "history": history,
               "system": system}
    return Detection(formatting, True, {k: v for k, v in columns.items() if v}, {},
                     "alpaca ranking with chosen/rejected columns (LLaMA-Factory; TRL's standard preference)")


def implicit_prompt_strings(f: File) -> Fit:
    """chosen/rejected strings with no prompt column: HH transcripts (turns parsed, the shared turns
    are the prompt) or TRL's standard implicit prompt (the shared beginning is the prompt)."""
    pair = _pair(f, ("transcript", "text"))
    if isinstance(pair, str):
        return pair
    if f.named("prompt", ("text", "conversation"), exclude=pair):
        return "there is a prompt column"
    name = ("Anthropic HH transcripts (the shared turns are the prompt)"
            if all(f.kinds[c] == "transcript" for c in pair) else
            "TRL standard preference, implicit prompt (the shared beginning is the prompt)")
    return Detection(TRL, True, {"chosen": pair[0], "rejected": pair[1]}, {}, name)


def alpaca_ranking_list(f: File) -> Fit:
    prompt = f.named("prompt", ("text",))
    pair = f.named("response", ("pair",)) or f.holding(("pair",))
    if not pair:
        return "no column holding [chosen, rejected] lists"
    if not prompt:
        return "no prompt column of text (instruction, prompt, question, ...)"
    query = f.named("query", ("text",), exclude=(prompt,))
    columns = {"prompt": prompt, "query": query, "response": pair, "system": f.named("system", ("text",)),
               "history": f.named("history", ("turns",))}
    return Detection(ALPACA, True, {k: v for k, v in columns.items() if v}, {},
                     f"LLaMA-Factory alpaca ranking ({pair} = [chosen, rejected])")


def unpaired(f: File) -> Fit:
    label = f.named("kto_tag", ("label",)) or f.holding(("label",))
    if not label:
        return "no column of true/false labels"
    messages = f.named("messages", ("conversation",))
    if messages:
        return Detection(SHAREGPT, False, {"messages": messages, "kto_tag": label}, f.tags(messages),
                         "LLaMA-Factory sharegpt KTO (a conversation + a desirable/undesirable label)")
    prompt = f.named("prompt", ("text", "conversation"), exclude=(label,))
    completion = f.named("response", ("text", "answers", "message"), exclude=(label,))
    if not (prompt and completion):
        return "no prompt and completion columns beside the label"
    if f.kinds[prompt] == "text" and f.kinds[completion] == "text":
        return Detection(ALPACA, False, {"prompt": prompt, "response": completion, "kto_tag": label}, {},
                         "unpaired KTO rows (prompt, completion, label)")
    return Detection(TRL, False, {"prompt": prompt, "response": completion, "kto_tag": label},
                     f.tags(prompt, completion), "TRL conversational unpaired KTO rows (prompt, completion, label)")


def _answered(f: File, column: str) -> bool:
    """Whether the column's conversations end with an assistant turn (SFT data; a prompt does not)."""
    return all(_roles_of(v[-1:]) & {"assistant", "gpt", "model", "bot"} for v in _values(f.rows, column))


def sharegpt(f: File) -> Fit:
    candidates = [c for c in [f.named("messages", ("conversation",)), *f.columns] if c and f.kinds[c] == "conversation"]
    messages = next((c for c in candidates if _answered(f, c)), None)
    if not messages:
        return ("no column of conversations that end with an assistant answer" if candidates else
                "no column of conversations (message lists with a user turn)")
    tags = f.tags(messages)
    name = "OpenAI/TRL messages" if tags["role_tag"] == "role" else "LLaMA-Factory sharegpt"
    columns = {"messages": messages, **({"system": s} if (s := f.named("system", ("text",))) else {})}
    return Detection(SHAREGPT, False, columns, tags, f"{name} conversations")


def trl_prompt_completion(f: File) -> Fit:
    prompt = f.named("prompt", ("conversation",))
    completion = f.named("response", ("answers", "message"))
    if not (prompt and completion):
        return "no prompt conversation with a completion of assistant messages"
    return Detection(TRL, False, {"prompt": prompt, "response": completion}, f.tags(prompt, completion),
                     "TRL conversational prompt/completion")


def alpaca(f: File) -> Fit:
    prompt = f.named("prompt", ("text",))
    response = f.named("response", ("text",), exclude=(prompt,))
    if not (prompt and response):
        return "no " + " and no ".join(
            what for what, found in (("prompt column (instruction, prompt, question, ...)", prompt),
                                     ("answer column (output, response, completion, answer, ...)", response))
            if not found)
    query = f.named("query", ("text",), exclude=(prompt, response))
    columns = {"prompt": prompt, "query": query, "response": response, "system": f.named("system", ("text",)),
               "history": f.named("history", ("turns",))}
    plain = prompt.lower() == "prompt" and response.lower() == "completion"
    return Detection(ALPACA, False, {k: v for k, v in columns.items() if v}, {},
                     "TRL standard prompt/completion" if plain else "alpaca instructions (LLaMA-Factory)")


def plain_text(f: File) -> Fit:
    column = f.named("text", ("text", "transcript"))
    if not column:
        return "no text column"
    return Detection(TRL, False, {"text": column}, {}, "plain text (learned as it is)")


LAYOUTS: dict[str, Callable[[File], Any]] = {
    "LLaMA-Factory sharegpt ranking": sharegpt_ranking,
    "TRL conversational preference / UltraFeedback": trl_conversational_pair,
    "alpaca / TRL standard preference": prompt_chosen_rejected,
    "Anthropic HH transcripts / TRL standard implicit prompt": implicit_prompt_strings,
    "LLaMA-Factory alpaca ranking (output list)": alpaca_ranking_list,
    "unpaired KTO rows": unpaired,
    "sharegpt / OpenAI messages": sharegpt,
    "TRL conversational prompt/completion": trl_prompt_completion,
    "alpaca / prompt-completion": alpaca,
    "plain text": plain_text,
}


def detect(rows: list[dict], columns: list[str]) -> Detection:
    """The first layout of LAYOUTS the file fits; when none does, an empty alpaca mapping whose
    ``tried`` says what the file lacked for each layout."""
    f, tried = File(rows, columns), []
    for name, fits in LAYOUTS.items():
        found = fits(f)
        if isinstance(found, Detection):
            if found.formatting in (SHAREGPT, TRL) and not found.tags:
                found.tags = dict(default_tags(found.formatting))
            return found
        tried.append(f"{name}: {found}")
    return Detection(ALPACA, False, {}, {}, "", tried)


MESSAGE_ROLES = ("messages", "prompt", "response", "chosen", "rejected")  # roles that may hold messages


def mapped_tags(rows: list[dict], formatting: str, columns: dict[str, str | None]) -> dict | None:
    """The message keys and role names of the columns a mapping reads (None for alpaca, whose
    answers are read by their content alone)."""
    if formatting not in (SHAREGPT, TRL):
        return None
    sample = rows[:SAMPLE_ROWS]
    values = [v for role in MESSAGE_ROLES if columns.get(role) for v in _values(sample, columns[role])
              if isinstance(v, (list, dict))]
    return detect_tags(values) if values else dict(default_tags(formatting))


# ---- mapping -> registry entry ------------------------------------------------------------------


def check_mapping(formatting: str, ranking: bool, columns: dict[str, str | None], file_columns: list[str]) -> list[str]:
    """Problems with a column mapping, each naming the role and the column (empty list: fine)."""
    if formatting not in OFFERED:
        return [f"formatting {formatting!r} is not one of {', '.join(OFFERED)}"]
    used, required = format_roles(formatting, ranking)
    mapped = {role: columns.get(role) for role in used if columns.get(role)}
    errors = [f"{role}: choose the column that holds {ROLE_HELP[role]}" for role in required if role not in mapped]
    if formatting == ALPACA and ranking and not mapped.get("response") and \
            not (mapped.get("chosen") and mapped.get("rejected")):
        errors.append("ranking: map either response (a column holding [chosen, rejected]) or both chosen and rejected")
    if formatting == TRL and not ranking and not (
            mapped.get("messages") or (mapped.get("prompt") and mapped.get("response")) or mapped.get("text")):
        errors.append("trl: map messages (whole conversations), or prompt and response, or text")
    if mapped.get("kto_tag") and not (mapped.get("response") or mapped.get("messages")):
        errors.append("kto_tag: an unpaired row needs its answer too: map response (or messages)")
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
    """The registry entry for a mapping, as it is written. A role left unmapped whose LLaMA-Factory
    default column (e.g. ``input`` for query) exists in the file is stored as null, or the default
    would read it."""
    kept, ranking = stored(formatting, ranking)
    used, _ = format_roles(formatting, ranking)
    defaults = FORMATS[kept].columns
    entry: dict[str, Any] = {"file_name": file_name}
    if kept != ALPACA:
        entry["formatting"] = kept
    if ranking:
        entry["ranking"] = True
    mapping = {}
    for role in dict.fromkeys([*used, *defaults]):
        column = columns.get(role) if role in used else None
        if column:
            mapping[role] = column
        elif defaults.get(role) in file_columns:
            mapping[role] = None
    entry["columns"] = mapping
    if kept != ALPACA and tags:
        entry["tags"] = dict(tags)
    if description and description.strip():
        entry["description"] = description.strip()
    return compact_entry(entry)  # as register_dataset writes it: LLaMA-Factory's defaults left out


def display_format(info: dict) -> str:
    """How the Datasets tab names a registry entry's layout (prompt-chosen-rejected is stored as alpaca)."""
    cols, defaults = info.get("columns") or {}, FORMATS[ALPACA].columns
    extras = [cols.get(role) not in (None, defaults[role]) for role in ("query", "history")]  # mapped off default
    if info.get("formatting", ALPACA) == ALPACA and info.get("ranking") and cols.get("chosen") \
            and cols.get("rejected") and not any(extras):
        return PROMPT_CHOSEN_REJECTED
    return info.get("formatting", ALPACA)
