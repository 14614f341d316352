"""The RLHF chain end to end on the tiny model: SFT -> RM (TRL's reward trainer) -> PPO (ours)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from engine.config import STAGES, ConfigError, from_dict, policy_stages
from engine.runs.folder import create_run
from engine.train import run as train_in_process
from tests.helpers import tiny_config

# What the stage table promises each train log line carries (the charts and summaries read these).
RM_KEYS = ("loss", "learning_rate", *STAGES["rm"].logged(STAGES["rm"].options()))
PPO_KEYS = ("loss", "learning_rate", *STAGES["ppo"].logged(STAGES["ppo"].options()))


def train(config: dict):
    run_dir = create_run(from_dict(config))
    state = train_in_process(run_dir)
    assert state == "completed", run_dir.status()
    return run_dir


@pytest.fixture(scope="module")
def sft(tiny_model):
    return train(tiny_config("sft"))


@pytest.fixture(scope="module")
def rm(sft):
    return train(tiny_config("rm", init_from=str(sft), data={"eval_dataset": "sql_dpo_eval"}))


@pytest.fixture(scope="module")
def ppo_run(sft, rm):
    return train(tiny_config("ppo", init_from=str(sft), data={"val_size": 4},
                             ppo={"reward_run": str(rm), "rollout_batch_size": 8, "max_new_tokens": 12},
                             training={"max_steps": 3, "per_device_train_batch_size": 4}))


def test_reward_model_logs_accuracy_and_margin_every_step(rm):
    metrics = rm.metrics()
    train_logs = [m for m in metrics if "loss" in m]
    assert [m["step"] for m in train_logs] == [1, 2, 3, 4]
    for m in train_logs:
        assert all(k in m for k in RM_KEYS), m
    assert any("eval_accuracy" in m and "eval_margin" in m for m in metrics)
    saved = load_file(rm.adapter_dir / "adapter_model.safetensors")
    assert any("score" in k for k in saved), "the trained score head is saved with the adapter"


def test_reward_model_scores_like_it_was_trained(rm):
    from engine.inference.reward import score
    from engine.models.loader import reward_model

    model, tokenizer = reward_model(rm)
    prompt = [{"role": "user", "content": "List all employees."}]
    scores = score(model, tokenizer, [prompt, prompt], ["SELECT * FROM employees;", "SELECT * FROM employees;"])
    assert scores[0] == pytest.approx(scores[1])  # same answer, same score, whatever the batch padding
    batched = score(model, tokenizer, [prompt, prompt], ["SELECT 1;", "-- all of them\nSELECT *\nFROM employees;"])
    alone = score(model, tokenizer, [prompt], ["SELECT 1;"])
    # Padding changes the matmul shapes and so the rounding: exact in float32 up to 1e-5, and within
    # two units in the last place in bfloat16 (which compute_dtype picks on CPUs where it is faster).
    tolerance = 1e-5 if model.dtype == torch.float32 else 2 * torch.finfo(model.dtype).eps * max(abs(alone[0]), 1)
    assert batched[0] == pytest.approx(alone[0], abs=tolerance)


def test_ppo_logs_every_iteration_and_starts_at_the_sft_model(ppo_run, sft):
    metrics = ppo_run.metrics()
    steps = [m for m in metrics if "objective/scores" in m]
    assert [m["step"] for m in steps] == [1, 2, 3]
    for m in steps:
        assert all(k in m for k in PPO_KEYS), sorted(m)
    held_out = [m for m in metrics if "eval_objective/scores" in m]
    assert [m["step"] for m in held_out] == [0, 3]  # before and after
    # The reference is the SFT model and the policy starts as it, so the first KL is exactly zero.
    assert held_out[0]["eval_objective/kl"] == pytest.approx(0.0, abs=1e-5)
    assert steps[0]["objective/kl"] == pytest.approx(0.0, abs=1e-4)


def test_ppo_saves_a_policy_adapter_that_moved_and_a_value_head(ppo_run, sft):
    before = load_file(sft.adapter_dir / "adapter_model.safetensors")
    after = load_file(ppo_run.adapter_dir / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert any((before[k] - after[k]).abs().max() > 0 for k in before)
    head = load_file(ppo_run.adapter_dir / "value_head.safetensors")
    assert set(head) == {"weight", "bias"} and head["weight"].abs().sum() > 0


def test_ppo_answers_load_like_any_run(ppo_run):
    from engine.config import Sampling
    from engine.inference.generate import answer, user_turn
    from engine.models.loader import inference_model

    lm, tokenizer = inference_model(run=ppo_run)
    assert len(answer(lm, tokenizer, [user_turn("How many rows?")], Sampling(max_new_tokens=4))[0]) == 1


def test_ppo_needs_a_reward_model_run(sft, tiny_model):
    from engine.stages.ppo import build

    with pytest.raises(ConfigError, match=r"ppo.reward_run: .* is an sft run; pick a reward model"):
        build(from_dict(tiny_config("ppo", init_from=str(sft), ppo={"reward_run": str(sft)})))
    with pytest.raises(ConfigError, match=r"ppo.reward_run: run 'nope' not found"):
        build(from_dict(tiny_config("ppo", ppo={"reward_run": "nope"})))


def test_reward_model_stands_on_the_sft_model(rm, tiny_model):
    from transformers import AutoModelForSequenceClassification

    from engine.models.loader import scoring_backbone

    backbone, _ = scoring_backbone(rm.config())
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    name = "model.layers.0.self_attn.q_proj.weight"
    merged, plain = dict(backbone.named_parameters())[name], dict(base.named_parameters())[name]
    assert (merged - plain).abs().max() > 0  # the SFT adapter is merged in


def test_a_reward_model_is_no_parent(rm):
    from engine.models.loader import training_model

    with pytest.raises(ConfigError, match=r"init_from: .* is an rm run \(a reward model\)"):
        training_model(from_dict(tiny_config("dpo", init_from=str(rm))))


def test_ui_lists_reward_models_only_where_they_belong(rm, sft):
    from webui import run_form, runinfo
    from webui.tabs import chat

    assert rm.name in [name for _label, name in runinfo.finished_runs()]
    assert rm.name not in [name for _label, name in runinfo.finished_runs(policy_stages())]
    assert rm.name not in [value for _label, value in chat.column_choices()]
    assert str(rm) not in [value for _label, value in run_form.parent_choices()]
    assert str(rm) in [value for _label, value in run_form.run_picker_choices("rm")]
