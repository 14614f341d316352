"""Task probes: does an answer show the behaviour a task is after? Each probe is a function
answer -> bool; an evaluation reports, per model, the fraction of held-out answers that pass
(seed 004's "alignment accuracy").

The shipped SQL sample's probes are here (the preferred answers open with an SQL comment and put
each clause on its own line). A task adds its own with ``PROBES["name"] = fn``.
"""

from __future__ import annotations

from typing import Callable


def has_sql_comment(answer: str) -> bool:
    """The preferred answers open with an SQL comment line (`-- ...`) and then give the query.
    Requiring the query matters: an over-optimised policy can open with `--` and then repeat
    comment lines forever, which is the style's form without its substance."""
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    code = " ".join(line for line in lines if not line.startswith("--")).upper()
    return bool(lines) and lines[0].startswith("--") and "SELECT" in code and "FROM" in code


def is_formatted(answer: str) -> bool:
    """The other half of the preferred style: clauses on their own lines (FROM starts a line)."""
    return any(line.strip().upper().startswith("FROM") for line in answer.splitlines()[1:])


PROBES: dict[str, Callable[[str], bool]] = {"comment_fraction": has_sql_comment, "formatted_fraction": is_formatted}


def probe_names(text: str | None) -> list[str]:
    """Comma-separated probe names (None: every probe); an unknown name is refused by name."""
    from engine.config import ConfigError

    names = list(PROBES) if text is None else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        raise ConfigError(f"--probes: unknown probe {unknown[0]!r}; known: {', '.join(PROBES)}")
    return names
