"""End-to-end engine runs on a tiny random model: the run-folder contract, SFT -> DPO chaining,
the reference model, metrics at every logging step, SIGTERM and crashes."""

from __future__ import annotations

import os
import time

import pytest
import torch
from safetensors.torch import load_file

from engine.config import from_dict, to_dict
from engine.models.cpu_dtype import CPU_DTYPE_ENV
from engine.runs.folder import create_run
from engine.runs.process import start_engine, stop, wait
from tests.helpers import tiny_config

REWARD_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")


def run_engine(config: dict):
    run_dir = create_run(from_dict(config))
    proc = start_engine(run_dir)
    status = wait(run_dir, proc, interval=0.2)
    assert proc.wait(timeout=60) == (0 if status.state != "failed" else 1)
    return run_dir, status


def adapter_weights(run_dir):
    return load_file(run_dir.adapter_dir / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def sft_run(tiny_model):
    run_dir, status = run_engine(tiny_config("sft", data={"eval_dataset": "sql_sft_eval"}))
    assert status.state == "completed", status
    return run_dir


@pytest.fixture(scope="module")
def dpo_run(sft_run):
    run_dir, status = run_engine(tiny_config("dpo", init_from=str(sft_run), data={"eval_dataset": "sql_dpo_eval"}))
    assert status.state == "completed", status
    return run_dir


def test_run_folder_contents(sft_run):
    assert sorted(p.name for p in sft_run.path.iterdir()) == [
        "adapter", "checkpoints", "config.yaml", "engine.log", "metrics.jsonl", "samples.jsonl", "status.json"]
    status = sft_run.status()
    assert status.state == "completed" and status.step == status.max_steps == 4
    assert status.error is None and status.ended >= status.started
    assert to_dict(sft_run.config()) == to_dict(from_dict(tiny_config("sft", data={"eval_dataset": "sql_sft_eval"})))
    assert "run completed" in sft_run.log_file.read_text()


def test_the_log_holds_no_library_noise(sft_run):
    """bitsandbytes (imported with peft) logged a missing optional `kernels` package on every run,
    on CPUs with AVX-512 BF16; the engine drops it (engine.runs.noise), keeping its own lines."""
    log = sft_run.log_file.read_text()
    assert "gemm_4bit_forward" not in log and "kernels-community" not in log
    assert "INFO engine: stage sft" in log


def test_the_log_says_what_the_weights_compute_in_and_why(sft_run):
    # make test pins auto's CPU dtype (conftest --cpu-dtype); a user's machine logs its measurement
    pinned = os.environ.get(CPU_DTYPE_ENV, "")
    log = sft_run.log_file.read_text()
    assert f"computing in {pinned}" in log and "(model.dtype auto: " in log


def test_sft_metrics_and_parameters_changed(sft_run):
    lines = sft_run.metrics()
    train = [m for m in lines if "loss" in m]
    assert [m["step"] for m in train] == [1, 2, 3, 4]  # logging_steps=1
    for m in train:
        assert {"learning_rate", "grad_norm", "epoch", "wall_time", "memory_rss_mb",
                "num_input_tokens_seen"} <= set(m)
    assert any("tokens_per_second" in m for m in train)
    assert "eval_loss" in lines[-1]
    # LoRA B matrices start at zero; training must have moved them
    weights = adapter_weights(sft_run)
    lora_b = [w for k, w in weights.items() if "lora_B" in k]
    assert lora_b and all(w.abs().sum() > 0 for w in lora_b)


def test_dpo_logs_reward_metrics_at_every_logging_step(dpo_run):
    lines = dpo_run.metrics()
    train = [m for m in lines if "loss" in m]
    assert [m["step"] for m in train] == [1, 2, 3, 4]
    for m in train:
        assert set(REWARD_KEYS) | {"logps/chosen", "logps/rejected"} <= set(m), m
    evals = [m for m in lines if "eval_loss" in m]
    assert evals and {f"eval_{k}" for k in REWARD_KEYS} <= set(evals[-1])
    # policy starts at the reference (the SFT model): zero implicit reward at step 1
    assert train[0]["rewards/chosen"] == pytest.approx(0, abs=1e-4)
    assert train[-1]["rewards/margins"] > 0


def test_dpo_continues_and_changes_the_sft_adapter(sft_run, dpo_run):
    sft, dpo = adapter_weights(sft_run), adapter_weights(dpo_run)
    assert sft.keys() == dpo.keys()  # same adapter shape, applies to the bare base model
    assert any(not torch.equal(sft[k], dpo[k]) for k in sft)
    assert not any(".ref." in k for k in dpo)  # TRL's frozen reference copy is not saved


def test_reference_model_is_the_sft_model(sft_run, saves):
    """The reference log-probs TRL uses equal those of base + SFT adapter (not the bare base),
    even after the policy has been trained."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.stages import dpo

    cfg = from_dict(tiny_config("dpo", init_from=str(sft_run), training={"max_steps": 2}))
    run_dir = create_run(cfg)
    trainer = dpo.build_trainer(cfg, run_dir, callbacks=[])
    trainer.train()
    batch = next(iter(trainer.get_eval_dataloader(trainer.train_dataset)))
    ref_chosen, ref_rejected = trainer.compute_ref_log_probs(trainer.model, batch)

    def sequence_logps(model):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        token_logps = logits.log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
        return (token_logps * batch["completion_mask"][:, 1:]).sum(-1).chunk(2)

    base = AutoModelForCausalLM.from_pretrained(saves / "models" / "tiny").eval()
    with torch.no_grad():
        base_chosen, _ = sequence_logps(base)
        sft_chosen, sft_rejected = sequence_logps(PeftModel.from_pretrained(base, sft_run.adapter_dir))
    torch.testing.assert_close(ref_chosen, sft_chosen, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ref_rejected, sft_rejected, rtol=1e-4, atol=1e-3)
    assert not torch.allclose(ref_chosen, base_chosen, atol=1e-2)


def test_sigterm_stops_and_saves_the_adapter(tiny_model):
    run_dir = create_run(from_dict(tiny_config("sft", training={"max_steps": 100000})))
    proc = start_engine(run_dir)
    deadline = time.time() + 120
    while run_dir.status().step < 2:
        assert proc.poll() is None and time.time() < deadline, run_dir.log_file.read_text()
        time.sleep(0.2)
    assert stop(run_dir)
    status = wait(run_dir, proc, interval=0.2)
    assert proc.wait(timeout=60) == 0
    assert status.state == "stopped" and 2 <= status.step < 100000
    assert (run_dir.adapter_dir / "adapter_model.safetensors").exists()
    assert not stop(run_dir)  # nothing left to stop


def test_crash_leaves_failed_status_with_the_error(tiny_model):
    run_dir, status = run_engine(tiny_config("dpo", data={"dataset": "sql_sft"}))
    assert status.state == "failed"
    assert "ranking" in status.error and "sql_sft" in status.error
    assert "Traceback" in run_dir.log_file.read_text()


def test_init_from_a_run_without_weights_is_rejected(tiny_model):
    unfinished = create_run(from_dict(tiny_config("sft")))
    run_dir, status = run_engine(tiny_config("dpo", init_from=str(unfinished)))
    assert status.state == "failed" and status.error.startswith("ConfigError: init_from:")


def test_full_fine_tuning_chain(tiny_model):
    """finetuning_type=full saves model/; a full DPO run from it trains against a frozen copy."""
    sft_dir, sft = run_engine(tiny_config("sft", model={"name_or_path": "tiny", "finetuning_type": "full"}))
    assert sft.state == "completed" and (sft_dir.model_dir / "model.safetensors").exists()
    assert not sft_dir.adapter_dir.exists()
    dpo_dir, dpo = run_engine(tiny_config("dpo", init_from=str(sft_dir),
                                          model={"name_or_path": "tiny", "finetuning_type": "full"}))
    assert dpo.state == "completed", dpo
    before, after = load_file(sft_dir.model_dir / "model.safetensors"), load_file(dpo_dir.model_dir / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    first = next(m for m in dpo_dir.metrics() if "loss" in m)
    assert first["rewards/chosen"] == pytest.approx(0, abs=1e-4)  # the reference is the SFT model


def test_full_fine_tuning_from_a_lora_run_trains_every_weight(sft_run):
    """The LoRA parent is merged into the base, and then every weight is trainable again."""
    from engine.models.loader import training_model

    model, _ = training_model(from_dict(tiny_config("dpo", init_from=str(sft_run),
                                                      model={"name_or_path": "tiny", "finetuning_type": "full"})))
    assert not hasattr(model, "peft_config")
    assert all(p.requires_grad for p in model.parameters())


def test_pref_ftx_mixes_an_sft_term_into_the_dpo_loss(sft_run):
    from engine.stages import dpo

    cfg = from_dict(tiny_config("dpo", init_from=str(sft_run), dpo={"pref_ftx": 0.5}))
    trainer = dpo.build_trainer(cfg, create_run(cfg), callbacks=[])
    assert trainer.args.loss_type == ["sigmoid", "sft"] and trainer.args.loss_weights == [1.0, 0.5]
    plain = from_dict(tiny_config("dpo", init_from=str(sft_run)))
    assert dpo.build_trainer(plain, create_run(plain), callbacks=[]).args.loss_type == ["sigmoid"]


def test_qlora_4bit_chain_with_a_chosen_template(tiny_model):
    """QLoRA trains LoRA on a 4-bit base (bitsandbytes on CPU); the template travels with the run,
    and a child run with another template is refused naming model.template."""
    model = {"name_or_path": "tiny", "finetuning_type": "qlora-4bit", "template": "chatml"}
    sft_dir, sft = run_engine(tiny_config("sft", model=model, sft={"assistant_only_loss": True}))
    assert sft.state == "completed", sft
    assert '"eos_token": "<|im_end|>"' in (sft_dir.adapter_dir / "tokenizer_config.json").read_text()
    dpo_dir, dpo = run_engine(tiny_config("dpo", model=model, init_from=str(sft_dir)))
    assert dpo.state == "completed", dpo
    train = [m for m in dpo_dir.metrics() if "loss" in m]
    assert len(train) == 4 and all(k in m for m in train for k in REWARD_KEYS)
    _, bad = run_engine(tiny_config("dpo", model={**model, "template": "model"}, init_from=str(sft_dir)))
    assert bad.state == "failed" and bad.error.startswith("ConfigError: model.template:")


def test_rows_all_longer_than_the_cutoff_fail_with_what_to_change(tiny_model):
    from engine.train import run as train_in_process

    run_dir = create_run(from_dict(tiny_config("dpo", data={"cutoff_len": 16}, samples={"count": 0})))
    assert train_in_process(run_dir) == "failed"
    error = run_dir.status().error
    assert error.startswith("DatasetError: data.cutoff_len: no row of 'sql_dpo' is left to train on") and \
        "Raise data.cutoff_len" in error


def test_training_on_a_file_that_is_not_utf8_names_the_file_and_line(tiny_model, tmp_path):
    from engine.train import run as train_in_process

    (tmp_path / "dataset_info.json").write_text('{"latin": {"file_name": "latin1.jsonl"}}')
    (tmp_path / "latin1.jsonl").write_bytes(b'{"instruction": "Hi", "output": "Hello"}\n'
                                            b'{"instruction": "caf\xe9?", "output": "Oui"}\n')
    run_dir = create_run(from_dict(tiny_config("sft", data={"dataset": "latin", "dataset_dir": str(tmp_path)},
                                               samples={"count": 0})))
    assert train_in_process(run_dir) == "failed"
    error = run_dir.status().error
    assert "latin1.jsonl, line 2: not UTF-8 text (byte 0xe9 at column 21)" in error, error
    assert run_dir.weights() is None and not run_dir.checkpoints_dir.exists() and run_dir.metrics() == []
