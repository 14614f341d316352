"""Training-health warnings: the rules on synthetic metric histories, the callback that writes them
into status.json and stops on NaN, and end-to-end runs that really diverge."""

from __future__ import annotations

import logging
import math
import random
import re
from types import SimpleNamespace

import torch
import yaml
from safetensors.torch import load_file
from transformers import TrainerControl, TrainerState

from engine.config import from_dict
from engine.runs import health
from engine.runs.folder import create_run, read_metrics, read_status, write_status
from engine.runs.process import follow, start_engine
from engine.stages.callbacks import LastFiniteWeights, RunFolderCallback, StopRequest
from tests.helpers import tiny_config


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


def test_status_warnings_skip_what_the_error_says_and_read_old_folders():
    w = health.warning(health.NON_FINITE, "loss=nan at step 3: training diverged.", 3)
    other = health.warning(health.COARSE_ACCURACY, "accuracy was exactly 1", 5)
    status = {"warnings": [w, other], "error": w["message"] + " Training stopped; ..."}
    assert health.status_warnings(status) == [other]
    assert health.status_warnings({"warning": "non-finite values in loss", "step": 2})[0]["message"] == \
        "non-finite values in loss"
    assert health.status_warnings({"state": "unknown"}) == []


# --- the callback ------------------------------------------------------------------------------

def test_last_finite_weights_restore_and_the_full_model_rule():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    model[0].requires_grad_(False)  # a "LoRA" run: half the weights train
    keep = LastFiniteWeights()
    keep.take(model, 6)
    good = model[1].weight.detach().clone()
    with torch.no_grad():
        model[1].weight[0, 0] = math.nan
    keep.take(model, 7)  # NaN weights do not replace the finite copy
    assert not keep.finite(model) and keep.restore(model) == 6
    assert torch.equal(model[1].weight, good) and keep.finite(model)
    full = LastFiniteWeights()
    full.take(torch.nn.Linear(4, 4), 1)  # everything trains: no copy (it would double the memory)
    assert full.enabled is False and full.restore(torch.nn.Linear(4, 4)) is None


def test_callback_writes_warnings_once_and_stops_on_nan(tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_status(run_dir, state="running")
    stop = StopRequest()
    callback = RunFolderCallback(run_dir, stop=stop)
    args = SimpleNamespace(per_device_train_batch_size=2, gradient_accumulation_steps=1, world_size=1,
                           logging_steps=1, output_dir=str(run_dir / "checkpoints"), fp16=False)
    (run_dir / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (run_dir / "checkpoints" / "checkpoint-9").mkdir()  # after the NaN: not the one to name
    state, control = TrainerState(), TrainerControl()
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    model[0].requires_grad_(False)
    caplog.set_level(logging.WARNING, logger="engine")
    for step in range(1, 8):
        state.global_step = step - 1
        callback.on_step_begin(args, state, control, model=model)
        state.global_step = step
        callback.on_log(args, state, control, model=model,
                        logs={"loss": 0.7, "rewards/accuracies": 1.0, "rewards/chosen": -0.1 * step,
                              "rewards/margins": 0.2 * step})
    warnings = read_status(run_dir)["warnings"]
    assert [w["code"] for w in warnings] == [health.CHOSEN_FALLING, health.COARSE_ACCURACY]
    assert [w["step"] for w in warnings] == [5, 5]  # first seen at step 5, kept while it holds
    assert "rose from" in warnings[0]["message"] and "-0.7" in warnings[0]["message"]  # numbers of now
    assert sum("rewards/chosen fell" in r.getMessage() for r in caplog.records) == 1  # logged once
    assert not control.should_training_stop and stop.reason is None
    good = model[1].weight.detach().clone()
    state.global_step = 7
    callback.on_step_begin(args, state, control, model=model)
    with torch.no_grad():
        model[1].weight.fill_(math.nan)  # what the optimiser step of a NaN gradient does
    state.global_step = 8
    callback.on_log(args, state, control, model=model, logs={"loss": 0.7, "grad_norm": math.nan})
    assert control.should_training_stop and stop.requested
    assert torch.equal(model[1].weight, good)
    assert stop.reason.startswith("grad_norm=nan at step 8") and "after step 7" in stop.reason
    assert "checkpoints/checkpoint-4" in stop.reason
    assert read_status(run_dir)["warnings"][0]["code"] == health.NON_FINITE
    assert any(r.levelname == "ERROR" and "training stopped" in r.getMessage() for r in caplog.records)


# --- end to end: runs that really diverge ------------------------------------------------------

def test_diverging_lora_run_fails_naming_the_metric_and_keeps_the_last_finite_adapter(tiny_model, tmp_path, capsys):
    """fp16 on CPU with learning rate 1.0: the LoRA update overflows within a few steps (step 3 in
    every trial). The run ends failed; adapter/ holds the weights from before the NaN step, which
    the checkpoint of the step before it (save_steps=1) holds too."""
    from engine.cli import train_run

    cfg = tiny_config("sft", model={"name_or_path": "tiny", "dtype": "float16"},
                      training={"learning_rate": 1.0, "max_steps": 12, "save_steps": 1})
    config = tmp_path / "diverge.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run_dir, status = train_run(str(config), [], quiet=True)
    out = capsys.readouterr().out
    assert status["state"] == "failed", status
    nan_step = status["warnings"][0]["step"]
    assert status["warnings"][0]["code"] == health.NON_FINITE and 2 <= nan_step < 12
    assert f"at step {nan_step}: training diverged" in status["error"]
    assert "=nan" in status["error"] or "=inf" in status["error"]
    assert f"the weights saved are those after step {nan_step - 1}" in status["error"]
    assert f"checkpoints/checkpoint-{nan_step - 1}" in status["error"]
    adapter = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    assert all(torch.isfinite(w).all() for w in adapter.values())
    before = load_file(run_dir / "checkpoints" / f"checkpoint-{nan_step - 1}" / "adapter_model.safetensors")
    assert before.keys() == adapter.keys() and all(torch.equal(before[k], adapter[k]) for k in before)
    assert read_status(run_dir)["step"] == nan_step  # stopped at once
    assert max(m["step"] for m in read_metrics(run_dir)) == nan_step
    # the CLI printed the warning once while following, and the summary the error
    assert out.count(f"warning (step {nan_step}): ") == 1 and "failed after" in out and "error: " in out
    assert "training stopped" in (run_dir / "engine.log").read_text()


def test_diverging_full_fine_tuning_saves_nothing(tiny_model):
    """Full fine-tuning keeps no copy of the weights (it would double the memory): when they turn
    NaN (fp16 on CPU overflows within a few steps), nothing is saved and the error says so."""
    cfg = tiny_config("sft", model={"name_or_path": "tiny", "finetuning_type": "full", "dtype": "float16"},
                      training={"max_steps": 12})
    run_dir = create_run(from_dict(cfg))
    proc = start_engine(run_dir)
    status = follow(run_dir, lambda *_: None, proc=proc, interval=0.2)
    assert proc.wait(timeout=60) == 1
    assert status["state"] == "failed", status
    assert "training diverged" in status["error"] and "nothing was saved" in status["error"]
    assert not (run_dir / "model").exists() and status["step"] < 12
    assert "Traceback" not in (run_dir / "engine.log").read_text()
