"""Training-health rules: plain functions over a run's metric history.

The history is the list of dicts in metrics.jsonl (TRL's metric names verbatim; train lines carry
``loss``, eval lines ``eval_loss``); the answers to the sample prompts have rules of their own
(engine.runs.degeneration), which ``check`` runs too. Each rule returns None or one warning, a plain dict
``{"code", "message", "step"}``: ``code`` is stable (the UI, the CLI and tests match on it), the
message says in numbers what is happening and what to do, ``step`` is where it was seen. The
engine's callback writes the current list to status.json under ``warnings``.
"""

from __future__ import annotations

import math
from typing import Any

from engine.runs import degeneration

NON_FINITE = "non_finite"
CHOSEN_FALLING = "chosen_reward_falling"
COARSE_ACCURACY = "coarse_accuracy"

# Chosen reward falling while margins rise (naive DPO lowering the chosen answer's likelihood).
# Per-step DPO rewards are noisy (a few pairs per step), so the rule fits a least-squares line over
# the last CHOSEN_WINDOW train logs and needs MIN_POINTS of them before it says anything.
CHOSEN_WINDOW = 20
MIN_POINTS = 5
# A trend counts when its slope is MIN_T standard errors away from zero (about p < 0.01 one-sided
# for 5-20 points): pure noise seldom gets there, and both curves must get there at once.
MIN_T = 3.0
# ... and when the fitted chosen reward drops by at least this much over the window: rewards are
# beta x log-ratio, so with the usual beta=0.1 this is half a nat of the chosen answers' log-prob;
# smaller drifts are not worth a warning even when perfectly smooth.
MIN_CHOSEN_DROP = 0.05

# Accuracy stuck at exactly 0 or 1: with n pairs behind a logged value it can only be k/n, so with
# n <= TINY_BATCH_MAX the last ACCURACY_WINDOW values all being 0 or 1 says more about n than about
# the model (with n=4 and a true accuracy of 0.8, five such values in a row have p ~ 1%).
TINY_BATCH_MAX = 4
ACCURACY_WINDOW = 5
ACCURACY_KEYS = ("rewards/accuracies", "accuracy")  # DPO, reward model (TRL's names)

# Memorising: DPO's train accuracy at exactly 1.0 at each of the last MEMORY_WINDOW logged steps while
# the margins still rise (t >= MIN_T), after more than one pass over the pairs: the pairs are being
# learned by heart (the classic picture of a small preference set trained for many epochs).
MEMORISING = "memorising"
MEMORY_WINDOW = 5


def warning(code: str, message: str, step: Any) -> dict:
    return {"code": code, "message": message, "step": step}


def train_logs(records: list[dict]) -> list[dict]:
    """The training log lines (eval lines carry eval_loss, the end-of-training summary train_loss)."""
    return [r for r in records if "loss" in r]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares line: (slope, intercept, t = slope / its standard error; inf for a perfect line)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if n < 3 or sxx == 0:
        return 0.0, my, 0.0
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    intercept = my - slope * mx
    rss = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    stderr = math.sqrt(rss / (n - 2) / sxx)
    if stderr == 0:
        return slope, intercept, math.copysign(math.inf, slope) if slope else 0.0
    return slope, intercept, slope / stderr


def non_finite(records: list[dict], ignore: tuple[str, ...] = ()) -> dict | None:
    """The first line holding a NaN or infinite value (keys in ``ignore`` excepted)."""
    for r in records:
        bad = [k for k, v in r.items() if k not in ignore and is_number(v) and not math.isfinite(v)]
        if bad:
            values = ", ".join(f"{k}={r[k]}" for k in bad)
            return warning(NON_FINITE, f"{values} at step {r.get('step')}: training diverged. Lower "
                           "training.learning_rate (or training.max_grad_norm), check the data for empty or "
                           "huge examples, and prefer model.dtype float32/bfloat16 over float16.", r.get("step"))
    return None


def chosen_falling(records: list[dict]) -> dict | None:
    """DPO: the chosen answers' reward trends down below zero (they become less likely than under
    the reference) while the margin still grows: the loss is won by pushing both answers down."""
    points = [r for r in train_logs(records)
              if all(is_number(r.get(k)) and math.isfinite(r[k]) for k in ("rewards/chosen", "rewards/margins"))]
    points = points[-CHOSEN_WINDOW:]
    if len(points) < MIN_POINTS:
        return None
    xs = [float(r["step"]) for r in points]
    c_slope, c_icpt, c_t = fit(xs, [r["rewards/chosen"] for r in points])
    m_slope, m_icpt, m_t = fit(xs, [r["rewards/margins"] for r in points])
    first, last = xs[0], xs[-1]
    c_start, c_end = c_icpt + c_slope * first, c_icpt + c_slope * last
    if not (c_t <= -MIN_T and m_t >= MIN_T and c_start - c_end >= MIN_CHOSEN_DROP and c_end < 0):
        return None
    m_start, m_end = m_icpt + m_slope * first, m_icpt + m_slope * last
    return warning(CHOSEN_FALLING,
                   f"rewards/chosen fell from {c_start:.3g} to {c_end:.3g} over steps {first:.0f}-{last:.0f} "
                   f"while rewards/margins rose from {m_start:.3g} to {m_end:.3g}: the chosen answers are "
                   "becoming less likely than under the reference. Try dpo.loss_type: dpop, or dpo.pref_ftx > 0 "
                   "(e.g. 0.1), or a smaller training.learning_rate.", points[-1]["step"])


def coarse_accuracy(records: list[dict], pairs_per_log: int | None) -> dict | None:
    """Accuracy exactly 0 or 1 at every one of the last logged steps while only a handful of pairs
    stand behind each logged value: the number is too coarse to mean anything."""
    if not pairs_per_log or pairs_per_log > TINY_BATCH_MAX:
        return None
    train = train_logs(records)
    key = next((k for k in ACCURACY_KEYS if any(k in r for r in train)), None)
    if key is None:
        return None
    values = [r[key] for r in train if is_number(r.get(key))][-ACCURACY_WINDOW:]
    if len(values) < ACCURACY_WINDOW or any(v not in (0.0, 1.0) for v in values):
        return None
    steps = ", ".join(f"{k / pairs_per_log:g}" for k in range(pairs_per_log + 1))
    return warning(COARSE_ACCURACY,
                   f"{key} was exactly 0 or 1 at each of the last {ACCURACY_WINDOW} logged steps "
                   f"({', '.join(f'{v:g}' for v in values)}) with only {pairs_per_log} pair(s) behind each value "
                   f"(it can only be {steps}): too coarse to read. Use a larger batch (training."
                   "per_device_train_batch_size x gradient_accumulation_steps >= 8) or read "
                   f"eval_{key}.", train[-1].get("step"))


def memorising(records: list[dict], facts: degeneration.RunFacts | None = None) -> dict | None:
    """DPO: accuracy pinned at 1.0 with margins still rising, each pair seen more than once."""
    points = [r for r in train_logs(records) if is_number(r.get("rewards/accuracies"))
              and is_number(r.get("rewards/margins")) and math.isfinite(r["rewards/margins"])]
    pinned = []
    for r in reversed(points):  # the trailing run of logged steps at exactly 1.0
        if r["rewards/accuracies"] < 1.0:
            break
        pinned.insert(0, r)
    pinned = pinned[-CHOSEN_WINDOW:]
    epoch = pinned[-1].get("epoch") if pinned else None
    if len(pinned) < MEMORY_WINDOW or not is_number(epoch) or epoch <= 1.0:
        return None
    slope, icpt, t = fit([float(r["step"]) for r in pinned], [r["rewards/margins"] for r in pinned])
    if slope <= 0 or t < MIN_T:
        return None
    facts = facts or degeneration.RunFacts()
    pairs = f"each of the {facts.train_rows} training pairs" if facts.train_rows else "each training pair"
    fewer = f" (training.num_train_epochs is {facts.epochs:g})" if facts.epochs else ""
    first, last = pinned[0]["step"], pinned[-1]["step"]
    return warning(MEMORISING,
                   f"rewards/accuracies has been 1.0 at every logged step since step {first} while rewards/margins "
                   f"keep rising ({icpt + slope * first:.3g} to {icpt + slope * last:.3g}), and {pairs} has been "
                   f"seen {epoch:.1f} times: the model is learning these pairs by heart, which says nothing of "
                   f"new prompts. Read eval_rewards/accuracies on held-out pairs; train fewer epochs{fewer}, "
                   "use more pairs or lower training.learning_rate.", last)


def check(records: list[dict], pairs_per_log: int | None = None, ignore: tuple[str, ...] = (),
          samples: list[dict] = (), kl_bound: float | None = None,
          facts: degeneration.RunFacts | None = None) -> list[dict]:
    """Every rule over a metric history and the run's sample answers: the warnings that hold now,
    in a fixed order.

    ``pairs_per_log``: examples (pairs) averaged into each logged train value, i.e.
    per_device_train_batch_size x gradient_accumulation_steps x logging_steps; None skips that rule.
    ``ignore``: keys whose non-finite values are expected (fp16 loss scaling's inf grad_norm).
    ``samples``, ``kl_bound``: the answers to the sample prompts (engine.runs.degeneration).
    ``facts``: the run's settings, which the advice reads.
    """
    found = (non_finite(records, ignore), chosen_falling(records), coarse_accuracy(records, pairs_per_log),
             memorising(records, facts))
    return [w for w in found if w is not None] + degeneration.alarms(list(samples), kl_bound, facts)
