"""Training-health warnings: the rules on synthetic metric histories, the callback that writes them
into status.json and stops on NaN, and end-to-end runs that really diverge."""

from __future__ import annotations

import math
import random
import re

from engine.runs import degeneration, health


def dpo_history(chosen, margins, start: int = 1, accuracies=None) -> list[dict]:
    """Train lines with TRL's DPO keys (plus an eval line now and then, which the rules skip)."""
    lines = []
    for i, (c, m) in enumerate(zip(chosen, margins)):
        step = start + i
        lines.append({"step": step, "loss": 0.69, "grad_norm": 1.0, "learning_rate": 1e-4,
                      "rewards/chosen": c, "rewards/rejected": c - m, "rewards/margins": m,
                      "rewards/accuracies": accuracies[i] if accuracies else 0.75})
        if step % 5 == 0:
            lines.append({"step": step, "eval_loss": 0.6, "eval_rewards/chosen": 5.0, "eval_rewards/margins": -5.0})
    return lines


# --- rule 1: chosen reward falling while the margins rise ---------------------------------------

def test_chosen_falling_while_margins_rise_fires_with_numbers_and_advice():
    rng = random.Random(0)
    steps = range(1, 21)
    history = dpo_history([-0.02 * s + rng.gauss(0, 0.01) for s in steps],
                          [0.05 * s + rng.gauss(0, 0.01) for s in steps])
    [w] = health.check(history)
    assert w["code"] == health.CHOSEN_FALLING and w["step"] == 20
    assert "rewards/chosen fell from" in w["message"] and "rewards/margins rose from" in w["message"]
    assert "steps 1-20" in w["message"]
    assert re.search(r"fell from -?0\.0\d* to -0\.(39|40|41)", w["message"])  # the fitted line's ends
    assert "dpo.loss_type: dpop" in w["message"] and "dpo.pref_ftx" in w["message"]


def test_chosen_falling_uses_only_the_trailing_window():
    # 30 healthy steps, then 20 of the failure: the window sees only the failure
    healthy = dpo_history([0.01 * s for s in range(1, 31)], [0.02 * s for s in range(1, 31)])
    failing = dpo_history([0.3 - 0.05 * i for i in range(1, 21)], [0.6 + 0.05 * i for i in range(1, 21)], start=31)
    [w] = health.check(healthy + failing)
    assert w["code"] == health.CHOSEN_FALLING and "steps 31-50" in w["message"]
    assert health.check(healthy + failing[:3]) == []  # the window still mostly holds healthy steps


def test_chosen_falling_needs_enough_points():
    history = dpo_history([-0.1 * s for s in range(1, 5)], [0.1 * s for s in range(1, 5)])
    assert health.chosen_falling(history) is None  # 4 points < MIN_POINTS
    assert health.chosen_falling(history + dpo_history([-0.5], [0.5], start=5)) is not None


def test_noise_does_not_fire():
    """Pure noise (no trend) at the size of per-step DPO rewards on a few pairs, 500 histories."""
    rng = random.Random(1)
    for _ in range(500):
        history = dpo_history([rng.gauss(-0.05, 0.2) for _ in range(20)], [rng.gauss(0.1, 0.3) for _ in range(20)])
        assert health.chosen_falling(history) is None


def test_healthy_dpo_curves_do_not_fire():
    steps = range(1, 31)
    rising = dpo_history([0.01 * s for s in steps], [0.05 * s for s in steps])  # chosen up, margins up
    assert health.check(rising) == []
    above_zero = dpo_history([0.5 - 0.01 * s for s in steps], [0.05 * s for s in steps])  # falls, still > 0
    assert health.check(above_zero) == []
    flat_margins = dpo_history([-0.02 * s for s in steps], [0.3 + 0.001 * (s % 2) for s in steps])
    assert health.check(flat_margins) == []
    tiny_drop = dpo_history([-0.0001 * s for s in steps], [0.05 * s for s in steps])  # smooth but negligible
    assert health.check(tiny_drop) == []


def test_sft_history_fires_nothing():
    history = [{"step": s, "loss": 2.0 / s, "grad_norm": 1.0, "learning_rate": 1e-3} for s in range(1, 40)]
    assert health.check(history, pairs_per_log=1) == []


# --- rule 2: NaN / inf -------------------------------------------------------------------------

def test_non_finite_names_the_metric_and_step():
    history = dpo_history([0.0] * 3, [0.1] * 3)
    history[2]["grad_norm"] = math.nan
    history[2]["rewards/chosen"] = -math.inf
    [w] = health.check(history)
    assert w["code"] == health.NON_FINITE and w["step"] == 3
    assert "grad_norm=nan" in w["message"] and "rewards/chosen=-inf" in w["message"]
    assert "learning_rate" in w["message"] and "dtype" in w["message"]


def test_non_finite_in_an_eval_line_and_the_ignored_keys():
    history = [{"step": 1, "loss": 1.0}, {"step": 1, "eval_loss": math.inf}]
    assert health.non_finite(history)["message"].startswith("eval_loss=inf at step 1")
    skipped = [{"step": 1, "loss": 1.0, "grad_norm": math.inf}]  # fp16 loss scaling skipped a step
    assert health.check(skipped, ignore=("grad_norm",)) == [] and health.check(skipped)


# --- rule 3: accuracy stuck at 0 or 1 with a tiny batch ----------------------------------------

def test_coarse_accuracy_with_a_tiny_batch():
    history = dpo_history([0.0] * 6, [0.1] * 6, accuracies=[0.5, 1.0, 1.0, 0.0, 1.0, 1.0])
    [w] = health.check(history, pairs_per_log=2)
    assert w["code"] == health.COARSE_ACCURACY and w["step"] == 6
    assert "rewards/accuracies" in w["message"] and "2 pair(s)" in w["message"]
    assert "0, 0.5, 1" in w["message"] and "eval_rewards/accuracies" in w["message"]


def test_coarse_accuracy_negatives():
    ones = dpo_history([0.0] * 8, [0.1] * 8, accuracies=[1.0] * 8)
    assert health.check(ones, pairs_per_log=8) == []  # a big batch at 1.0 is just a good train accuracy
    assert health.check(ones, pairs_per_log=None) == []  # batch unknown
    assert health.check(ones[:4], pairs_per_log=1) == []  # fewer than ACCURACY_WINDOW logged steps
    mixed = dpo_history([0.0] * 8, [0.1] * 8, accuracies=[1.0] * 7 + [0.75])
    assert health.check(mixed, pairs_per_log=4) == []


def test_coarse_accuracy_of_a_reward_model():
    history = [{"step": s, "loss": 0.5, "accuracy": 1.0} for s in range(1, 6)]
    [w] = health.check(history, pairs_per_log=1)
    assert w["code"] == health.COARSE_ACCURACY and w["message"].startswith("accuracy was exactly")
    assert "eval_accuracy" in w["message"]


def memorising_history(steps: int = 12, per_epoch: float = 3.0, rising: bool = True) -> list[dict]:
    """DPO on 20 pairs, 3 steps an epoch: accuracy 1.0 from step 3, margins rising (or flat) with noise."""
    return [{"step": s, "epoch": s / per_epoch, "loss": 0.3, "rewards/accuracies": 1.0 if s >= 3 else 0.5,
             "rewards/margins": (0.3 * s if rising else 1.0) + (0.02 if s % 2 else -0.02),
             "rewards/chosen": 0.1, "rewards/rejected": -0.1} for s in range(1, steps + 1)]


def test_accuracy_pinned_at_one_with_rising_margins_after_an_epoch_is_memorising():
    facts = degeneration.RunFacts(epochs=6, train_rows=20)
    [w] = [w for w in health.check(memorising_history(), facts=facts) if w["code"] == health.MEMORISING]
    assert w["step"] == 12 and "since step 3" in w["message"]
    assert "each of the 20 training pairs has been seen 4.0 times" in w["message"]
    assert "train fewer epochs (training.num_train_epochs is 6)" in w["message"]
    codes = lambda history: [w["code"] for w in health.check(history)]  # noqa: E731
    assert health.MEMORISING not in codes(memorising_history(per_epoch=100))  # still in its first pass
    assert health.MEMORISING not in codes(memorising_history(rising=False))  # margins no longer rise
    assert health.MEMORISING not in codes(memorising_history(steps=6))  # 1.0 at 4 logged steps only
    dipped = memorising_history()
    dipped[-1]["rewards/accuracies"] = 0.95
    assert health.MEMORISING not in codes(dipped)
