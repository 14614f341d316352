"""Task probes: does an answer show the behaviour a task is after? Declared without code, on a
dataset in dataset_info.json (a "probes" key, which LLaMA-Factory ignores) or for one evaluation:

    "probes": {"numbered": {"starts_with": "1."},
               "commented": {"starts_with": "--", "matches": "(?im)^(?!\\s*--).*select"}}

A probe holds when every condition holds: ``matches`` / ``not_matches`` (regular expressions searched
in the answer; a list: each of them), ``starts_with`` (after leading blanks), ``contains`` /
``not_contains`` (text), ``min_lines`` / ``max_lines`` (non-empty lines), ``max_chars``.

**Alignment accuracy** (seed 004's measure): the fraction of answers that pass the probe and are
not degenerate (empty, or looping: engine.runs.degeneration). Evaluation, the in-training samples
and `workbench eval` report it per probe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.config import ConfigError
from engine.runs.degeneration import degenerate

TEXT_KINDS = ("matches", "not_matches", "starts_with", "contains", "not_contains")
COUNT_KINDS = ("min_lines", "max_lines", "max_chars")
KINDS = TEXT_KINDS + COUNT_KINDS


class ProbeError(ConfigError):
    """A probe declaration that cannot work; the message names it and says what is allowed."""


def _lines(answer: str) -> int:
    return sum(1 for line in answer.splitlines() if line.strip())


CHECKS = {
    "matches": lambda answer, value: re.search(value, answer) is not None,
    "not_matches": lambda answer, value: re.search(value, answer) is None,
    "starts_with": lambda answer, value: answer.lstrip().startswith(value),
    "contains": lambda answer, value: value in answer,
    "not_contains": lambda answer, value: value not in answer,
    "min_lines": lambda answer, value: _lines(answer) >= value,
    "max_lines": lambda answer, value: _lines(answer) <= value,
    "max_chars": lambda answer, value: len(answer) <= value,
}


@dataclass(frozen=True)
class Probe:
    name: str
    conditions: tuple[tuple[str, Any], ...]  # (kind, value), every one must hold

    def passes(self, answer: str) -> bool:
        return all(CHECKS[kind](answer, value) for kind, value in self.conditions)

    def aligned(self, answer: str) -> bool:
        """Passes, and is not degenerate: what alignment accuracy counts."""
        return self.passes(answer) and not degenerate(answer)

    def accuracy(self, answers: list[str]) -> float | None:
        return sum(map(self.aligned, answers)) / len(answers) if answers else None


def _condition(where: str, kind: str, value: Any) -> list[tuple[str, Any]]:
    if kind not in KINDS:
        raise ProbeError(f"{where}: unknown condition {kind!r}; use {', '.join(KINDS)}")
    values = value if isinstance(value, list) and kind in ("matches", "not_matches") else [value]
    out = []
    for v in values:
        if kind in COUNT_KINDS:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ProbeError(f"{where}: {kind} takes a whole number >= 0, got {v!r}")
        elif not isinstance(v, str) or not v:
            raise ProbeError(f"{where}: {kind} takes a non-empty text, got {v!r}")
        elif kind in ("matches", "not_matches"):
            try:
                re.compile(v)
            except re.error as e:
                raise ProbeError(f"{where}: {kind} {v!r} is not a valid regular expression ({e})") from None
        out.append((kind, v))
    return out


def parse_probes(declared: Any, where: str = "probes") -> dict[str, Probe]:
    """{name: Probe} from a declaration ({name: {kind: value, ...}}); errors name the probe."""
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise ProbeError(f"{where}: expected an object of probes, e.g. {{\"numbered\": {{\"starts_with\": \"1.\"}}}}")
    probes = {}
    for name, conditions in declared.items():
        if not isinstance(conditions, dict) or not conditions:
            raise ProbeError(f"{where}.{name}: expected an object of conditions, e.g. {{\"starts_with\": \"1.\"}}")
        probes[name] = Probe(name, tuple(c for kind, value in conditions.items()
                                         for c in _condition(f"{where}.{name}", kind, value)))
    return probes


def parse_one(text: str, where: str = "--probe") -> Probe:
    """A probe typed as NAME KIND VALUE, e.g. `numbered starts_with 1.` (the value is the rest)."""
    parts = text.strip().split(maxsplit=2)
    if len(parts) < 3:
        raise ProbeError(f"{where}: {text!r} should be NAME KIND VALUE, e.g. 'numbered starts_with 1.'; kinds: "
                         f"{', '.join(KINDS)}")
    name, kind, value = parts
    return parse_probes({name: {kind: int(value) if kind in COUNT_KINDS and value.isdigit() else value}},
                        where)[name]


def choose(declared: dict[str, Probe], names: str | None, extra: str | None) -> dict[str, Probe]:
    """The probes one evaluation counts: the declared ones named (comma-separated; None: all), then
    an extra one typed as NAME KIND VALUE."""
    chosen = dict(declared)
    if names is not None:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in declared]
        if unknown:
            raise ProbeError(f"--probes: {unknown[0]!r} is not a probe of the held-out dataset; it declares "
                             f"{', '.join(declared) or 'none'} (declare one in dataset_info.json or pass --probe)")
        chosen = {n: declared[n] for n in wanted}
    if extra:
        probe = parse_one(extra)
        chosen[probe.name] = probe
    return chosen


def declaration(probe: Probe) -> dict[str, Any]:
    """A probe as dataset_info.json declares it (conditions of one kind gathered into a list)."""
    out: dict[str, Any] = {}
    for kind, value in probe.conditions:
        out[kind] = [*out[kind], value] if isinstance(out.get(kind), list) else \
            [out[kind], value] if kind in out else value
    return out
