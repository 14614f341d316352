"""Degeneration: does the model still answer, or has it collapsed? Rules over the answers a run gives
to its fixed sample prompts during training (samples.jsonl: one record per answer, with ``step``,
``prompt``, ``answer``, ``tokens``, ``ended`` and, for runs trained against a reference, ``kl``).

Metrics can look ideal while the model loops (`1. 1. 1. 1. ...`) or falls silent, so these rules
read the answers themselves, each against the same prompt's answer at step 0 (the starting model:
a base model that already loops on a prompt is not an alarm). They return warnings in
engine.runs.health's form, naming the step and the prompt and quoting the answer. An answer that
loops or is empty is also not "aligned", whatever a task probe says (engine.data.probes).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

LOOP = "sample_loop"
EMPTY = "sample_empty"
RUNAWAY = "sample_length"
COLLAPSE = "sample_diversity"
DRIFT = "sample_kl"
CODES = (LOOP, EMPTY, RUNAWAY, COLLAPSE, DRIFT)

NGRAM = 3  # n-grams of words and punctuation marks a loop repeats
LOOP_SHARE = 0.5  # at least half the answer's n-grams repeat earlier ones ...
LOOP_MIN_WORDS = 12  # ... in an answer long enough for that to mean anything
CHAR_NGRAM, LOOP_MIN_CHARS = 8, 64  # the same over characters: loops with no spaces ("1.1.1.1", "hahaha")
COLLAPSE_RATIO = 0.5  # distinct bigrams across the answers fall below half of step 0's
RUNAWAY_SHARE = 0.5  # at least half the prompts newly run to the token limit
QUOTE_CHARS = 120


def words(text: str) -> list[str]:
    """Words and punctuation marks, each its own unit, so `1. 1. 1.` and `1.1.1.` both repeat."""
    return re.findall(r"\w+|[^\w\s]", text)


def _repeated_share(units, n: int) -> float:
    grams = [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams)


def repeated_ngram_share(text: str, n: int = NGRAM) -> float:
    """The share of an answer's n-grams that repeat an earlier one, over words and punctuation and
    over characters, whichever is larger (0 for a short answer)."""
    w = words(text)
    by_words = _repeated_share(w, n) if len(w) >= LOOP_MIN_WORDS else 0.0
    by_chars = _repeated_share(text, CHAR_NGRAM) if len(text) >= LOOP_MIN_CHARS else 0.0
    return max(by_words, by_chars)


def loops(text: str) -> bool:
    return repeated_ngram_share(text) >= LOOP_SHARE


def degenerate(text: str) -> bool:
    """An answer no task probe should count: empty, or looping."""
    return not text.strip() or loops(text)


def distinct_bigrams(texts: list[str]) -> float:
    """Distinct word bigrams over all bigrams of the answers (1: no repetition at all)."""
    grams = [tuple(w[i:i + 2]) for t in texts for w in [words(t)] for i in range(len(w) - 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def quote(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= QUOTE_CHARS else flat[:QUOTE_CHARS] + " …")


def _warning(code: str, message: str, step: Any) -> dict:
    return {"code": code, "message": message, "step": step}


@dataclass
class RunFacts:
    """What an alarm's advice reads of the run's own settings (None: not known, e.g. in a test)."""

    learning_rate: float | None = None
    epochs: float | None = None  # training.num_train_epochs
    pref_ftx: float | None = None  # dpo.pref_ftx; None where the stage has no such term
    stop_on_alarm: bool | None = None
    train_rows: int | None = None  # examples (pairs) in the training set


def advice(facts: RunFacts, clean_step: int | None) -> str:
    """What to change, from the run's own settings: never "add" what is already set."""
    lr = facts.learning_rate
    tips = [f"lower training.learning_rate (now {lr:g}, e.g. {lr / 3:.1g})" if lr else "lower training.learning_rate"]
    if facts.epochs and facts.epochs > 1:
        tips.append(f"train fewer epochs (training.num_train_epochs is {facts.epochs:g})")
    if clean_step:
        tips.append(f"stop by step {clean_step} (the last check without an alarm)")
    if facts.pref_ftx == 0:
        tips.append("add dpo.pref_ftx (an SFT term on the chosen answers, e.g. 0.5)")
    text = "; ".join(tips[:-1]) + (" or " if len(tips) > 1 else "") + tips[-1]
    if facts.stop_on_alarm is False:
        text += ". samples.stop_on_alarm stops a run at its first alarm and keeps the last clean weights"
    return text[0].upper() + text[1:] + "."


def by_step(samples: list[dict]) -> dict[int, list[dict]]:
    steps: dict[int, list[dict]] = {}
    for record in samples:
        steps.setdefault(record["step"], []).append(record)
    return dict(sorted(steps.items()))


def _answer_rules(base: dict[str, dict], steps: dict[int, list[dict]], facts: RunFacts) -> list[dict]:
    """Looping and empty answers at the latest step, each against the same prompt's answer at step 0
    (a base model that already looped there is not an alarm); the worst loop is quoted."""
    found, last = [], max(steps)
    for code, test, what in ((LOOP, loops, "loop"), (EMPTY, lambda t: not t.strip(), "are empty")):
        def new(records, test=test):
            return [r for r in records if test(r["answer"]) and not test(base.get(r["prompt"], r)["answer"])]
        hits = new(steps[last])
        if not hits:
            continue
        worst = max(hits, key=lambda r: (repeated_ngram_share(r["answer"]), len(r["answer"])))
        clean = max((s for s, records in steps.items() if s < last and s > 0 and not new(records)), default=None)
        found.append(_warning(code, f"{len(hits)} of {len(steps[last])} sample answers {what} now where they did "
                                    f"not at step 0; the worst, to {quote(worst['prompt'])}: {quote(worst['answer'])}. "
                                    f"The metrics may still look fine. {advice(facts, clean)}", last))
    return found


def ended_within(start: dict | None, record: dict) -> bool:
    """The prompt's answer at step 0 ended within the tokens ``record`` was allowed (a check cut
    shorter than the start's answers is not a runaway for being cut)."""
    return bool(start) and start.get("ended", False) and start.get("tokens", 0) < record.get("limit", math.inf)


def cut_like(text: str, record: dict) -> str:
    """``text`` cut to as many words as ``record``'s answer has when that answer was cut at its limit:
    distinct bigrams compared over answers of a like length."""
    if record.get("ended", True):
        return text
    return " ".join(words(text)[:len(words(record["answer"]))])


def _batch_rules(base: dict[str, dict], latest: list[dict], step: int, kl_bound: float | None) -> list[dict]:
    """Answers running to the token limit, collapsing diversity, drifting far from the reference."""
    found = []
    runaway = [r for r in latest if not r.get("ended", True) and ended_within(base.get(r["prompt"]), r)]
    if latest and len(runaway) >= RUNAWAY_SHARE * len(latest):
        found.append(_warning(RUNAWAY, f"{len(runaway)} of {len(latest)} sample answers now run to the token "
                                       f"limit where they ended at step 0, e.g. {quote(runaway[0]['answer'])}: the "
                                       "model no longer stops.", step))
    before = distinct_bigrams([cut_like(base[r["prompt"]]["answer"], r) for r in latest if r["prompt"] in base])
    now = distinct_bigrams([r["answer"] for r in latest])
    if len(latest) > 1 and now < COLLAPSE_RATIO * before:  # across answers: one answer's loop is LOOP's
        found.append(_warning(COLLAPSE, f"The sample answers' distinct bigrams fell to {now:.0%} from {before:.0%} at "
                                        "step 0: the answers are collapsing into repetition, e.g. "
                                        f"{quote(latest[0]['answer'])}.", step))
    kls = [r["kl"] for r in latest if isinstance(r.get("kl"), (int, float))]
    if kl_bound is not None and kls and sum(kls) / len(kls) > kl_bound:
        far = max(latest, key=lambda r: r.get("kl") or 0.0)
        found.append(_warning(DRIFT, f"The policy's log-ratio to its reference on its own answers is now "
                                     f"{sum(kls) / len(kls):.2f} nats per token (alarm above {kl_bound:g}), e.g. "
                                     f"{quote(far['answer'])}: it has moved far from the model it started as. Raise "
                                     "dpo.beta (or ppo.kl_coef) or lower training.learning_rate.", step))
    return found


def alarms(samples: list[dict], kl_bound: float | None = None, facts: RunFacts | None = None) -> list[dict]:
    """The degeneration warnings that hold at the latest sample step, in a fixed order; ``facts``: the
    run's settings, which the advice reads."""
    steps = by_step(samples)
    if len(steps) < 2:
        return []
    first, last = min(steps), max(steps)
    base = {r["prompt"]: r for r in steps[first]}
    return _answer_rules(base, steps, facts or RunFacts()) + _batch_rules(base, steps[last], last, kl_bound)
