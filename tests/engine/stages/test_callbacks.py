"""engine.stages.callbacks: the run folder kept live (metrics, status, health warnings), the stop on
NaN/inf keeping the last finite weights, and runs that really diverge."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import torch
import yaml
from safetensors.torch import load_file
from transformers import TrainerControl, TrainerState

from engine.config import from_dict, load_yaml
from engine.runs import health
from engine.runs.console import train_in_terminal
from engine.runs.folder import RunFolder, create_run
from engine.runs.process import start_engine, wait
from engine.stages.callbacks import LastFiniteWeights, RunFolderCallback, StopRequest
from tests.helpers import tiny_config

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
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.update_status(state="running")
    stop = StopRequest()
    callback = RunFolderCallback(run, stop=stop)
    args = SimpleNamespace(per_device_train_batch_size=2, gradient_accumulation_steps=1, world_size=1,
                           logging_steps=1, output_dir=str(run.checkpoints_dir), fp16=False)
    (run.checkpoints_dir / "checkpoint-4").mkdir(parents=True)
    (run.checkpoints_dir / "checkpoint-9").mkdir()  # after the NaN: not the one to name
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
    warnings = run.status().warnings
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
    assert run.status().warnings[0]["code"] == health.NON_FINITE
    assert any(r.levelname == "ERROR" and "training stopped" in r.getMessage() for r in caplog.records)


# --- end to end: runs that really diverge ------------------------------------------------------

def test_diverging_lora_run_fails_naming_the_metric_and_keeps_the_last_finite_adapter(tiny_model, tmp_path, capsys):
    """fp16 on CPU with learning rate 1.0: the LoRA update overflows within a few steps (step 3 in
    every trial). The run ends failed; adapter/ holds the weights from before the NaN step, which
    the checkpoint of the step before it (save_steps=1) holds too."""
    cfg = tiny_config("sft", model={"name_or_path": "tiny", "dtype": "float16"},
                      training={"learning_rate": 1.0, "max_steps": 12, "save_steps": 1})
    config = tmp_path / "diverge.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run, status = train_in_terminal(load_yaml(config), quiet=True)
    out = capsys.readouterr().out
    assert status.state == "failed", status
    nan_step = status.warnings[0]["step"]
    assert status.warnings[0]["code"] == health.NON_FINITE and 2 <= nan_step < 12
    assert f"at step {nan_step}: training diverged" in status.error
    assert "=nan" in status.error or "=inf" in status.error
    assert f"the weights saved are those after step {nan_step - 1}" in status.error
    assert f"checkpoints/checkpoint-{nan_step - 1}" in status.error
    adapter = load_file(run.adapter_dir / "adapter_model.safetensors")
    assert all(torch.isfinite(w).all() for w in adapter.values())
    before = load_file(run.checkpoints_dir / f"checkpoint-{nan_step - 1}" / "adapter_model.safetensors")
    assert before.keys() == adapter.keys() and all(torch.equal(before[k], adapter[k]) for k in before)
    assert run.status().step == nan_step  # stopped at once
    assert max(m["step"] for m in run.metrics()) == nan_step
    # the CLI printed the warning once while following, and the summary the error
    assert out.count(f"warning (step {nan_step}): ") == 1 and "failed after" in out and "error: " in out
    assert "training stopped" in run.log_file.read_text()


def test_diverging_full_fine_tuning_saves_nothing(tiny_model):
    """Full fine-tuning keeps no copy of the weights (it would double the memory): when they turn
    NaN (fp16 on CPU overflows within a few steps), nothing is saved and the error says so."""
    cfg = tiny_config("sft", model={"name_or_path": "tiny", "finetuning_type": "full", "dtype": "float16"},
                      training={"max_steps": 12})
    run = create_run(from_dict(cfg))
    proc = start_engine(run)
    status = wait(run, proc, interval=0.2)
    assert proc.wait(timeout=60) == 1
    assert status.state == "failed", status
    assert "training diverged" in status.error and "nothing was saved" in status.error
    assert not run.model_dir.exists() and status.step < 12
    assert "Traceback" not in run.log_file.read_text()
