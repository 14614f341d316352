"""Conversations in the shapes datasets ship them, turned into the one shape training uses:
a list of ``{"role": "system" | "user" | "assistant", "content": str}`` messages.

Three shapes need more than renaming keys, and each follows the tool that defined it:
- message lists whose keys and role names vary (LLaMA-Factory's ``from``/``value``/``human``/``gpt``,
  OpenAI's and TRL's ``role``/``content``/``user``/``assistant``): ``read_messages`` with the tags;
- preference pairs given as two whole conversations (TRL's implicit prompt, UltraFeedback, HH):
  the messages both share are the prompt, as ``trl.data_utils.extract_prompt`` takes it;
- Anthropic HH transcripts, one string with ``\\n\\nHuman:`` / ``\\n\\nAssistant:`` turns:
  ``parse_transcript`` splits them into messages, so the model's own chat template applies.
"""

from __future__ import annotations

import math
import re
from typing import Any

from engine.data.registry import REGISTRY_FILE, DatasetError

TRANSCRIPT_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
TRANSCRIPT_ROLES = {"Human": "user", "Assistant": "assistant"}


def text(value: Any, where: str) -> str:
    """A cell as text; None/NaN (csv blanks) become ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, dict)):
        raise DatasetError(f"{where} should be text but holds {type(value).__name__}")
    return str(value)


def answer(value: Any, where: str, content_key: str = "content") -> str:
    """An answer given as a string, a message object (``{"content": ...}``, ``{"role", "content"}``,
    ``{"from", "value"}``) or a list holding one such message."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        value = value.get(content_key, value.get("content", value.get("value")))
    result = text(value, where)
    if not result.strip():
        raise DatasetError(f"empty answer in {where}")
    return result


def read_messages(raw: Any, tags: dict, where: str) -> list[dict]:
    """A conversation as role/content messages: an optional system message first, then turns that
    alternate user/assistant starting with the user. Errors name the message at fault."""
    if not isinstance(raw, list) or not raw:
        raise DatasetError(f"{where} must be a non-empty list of messages")
    roles = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant", tags["system_tag"]: "system"}
    messages: list[dict] = []
    for i, msg in enumerate(raw, 1):
        tag = msg.get(tags["role_tag"]) if isinstance(msg, dict) else None
        if tag in (tags["observation_tag"], tags["function_tag"]):
            raise DatasetError(f"{where} message {i}: tool/function-call turns ({tag!r}) are not supported")
        if tag not in roles:
            raise DatasetError(f"{where} message {i}: role {tag!r} is not one of {sorted(roles)} "
                               f"(set \"tags\" in {REGISTRY_FILE} if your data uses other names)")
        content = text(msg.get(tags["content_tag"]), f"{where} message {i}")
        if not content.strip():
            raise DatasetError(f"{where} message {i} is empty")
        role = roles[tag]
        if role == "system" and i != 1:
            raise DatasetError(f"{where} message {i}: a system message may only come first")
        expected = "user" if sum(m["role"] != "system" for m in messages) % 2 == 0 else "assistant"
        if role != "system" and role != expected:
            raise DatasetError(f"{where} message {i}: expected a {expected} turn, turns must alternate "
                               "user/assistant starting with the user")
        messages.append({"role": role, "content": content})
    return messages


def parse_transcript(transcript: Any, where: str) -> list[dict]:
    """An Anthropic HH transcript ("\\n\\nHuman: ...\\n\\nAssistant: ...") as messages."""
    value = text(transcript, where)
    marks = list(TRANSCRIPT_TURN.finditer(value))
    if not marks or value[:marks[0].start()].strip():
        raise DatasetError(f"{where} is not a transcript: it should start with \"Human:\" and hold "
                           "\"\\n\\nHuman:\" / \"\\n\\nAssistant:\" turns")
    ends = [m.start() for m in marks[1:]] + [len(value)]
    return [{"role": TRANSCRIPT_ROLES[m.group(1)], "content": value[m.end():end].strip()}
            for m, end in zip(marks, ends)]


def is_transcript(value: Any) -> bool:
    return isinstance(value, str) and "Human:" in value and "\n\nAssistant:" in value


def split_shared_prompt(chosen: list[dict], rejected: list[dict], where: str) -> tuple[list[dict], str, str]:
    """(prompt messages, chosen answer, rejected answer) of two whole conversations: the prompt is
    what both share up to the last user turn, and each must then hold exactly one assistant answer."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    while shared and chosen[shared - 1]["role"] != "user":
        shared -= 1  # identical answers: the prompt still ends with the user's turn
    if not shared:
        raise DatasetError(f"{where}: chosen and rejected share no user turn to use as the prompt")
    answers = []
    for name, conversation in (("chosen", chosen), ("rejected", rejected)):
        rest = conversation[shared:]
        if len(rest) != 1 or rest[0]["role"] != "assistant":
            raise DatasetError(f"{where}: after the prompt both share, {name} should hold one assistant answer "
                               f"but holds {len(rest)} message(s) (the two conversations differ before their "
                               "last answer)")
        answers.append(rest[0]["content"])
    return chosen[:shared], answers[0], answers[1]


def split_shared_text(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(prompt, chosen, rejected) of two strings that start alike: the shared beginning is the
    prompt, as trl.data_utils.extract_prompt takes it, but cut at the last whitespace they share
    (TRL cuts at the first differing character, which can split a word: "Answer: T" + "urn off")."""
    index = 0
    while index < min(len(chosen), len(rejected)) and chosen[index] == rejected[index]:
        index += 1
    while index and not chosen[index - 1].isspace():
        index -= 1
    return chosen[:index].rstrip(), chosen[index:].lstrip(), rejected[index:].lstrip()
