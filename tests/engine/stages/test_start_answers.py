"""engine.stages.start_answers: a run that starts from the same weights with the same prompts reads
the step-0 answers an earlier run wrote instead of answering again; any change to what they depend
on answers afresh."""

from __future__ import annotations

import shutil

import pytest
import torch

from engine.config import from_dict
from engine.runs.folder import create_run
from engine.stages import samples, start_answers
from engine.stages.samples import Sampler
from tests.helpers import tiny_config

PROMPT = [[{"role": "user", "content": "How do I bake?"}]]


@pytest.fixture
def answered(monkeypatch) -> list[str]:
    """The answers generate() was asked for (one entry per call), each call answering 'Mix, then bake.'"""
    calls = []

    class Generation:
        texts, lengths, ended = ["Mix, then bake."], [4], [True]

    def fake_generate(model, tokenizer, prompts, sampling):
        calls.append(sampling.max_new_tokens)
        return Generation()

    monkeypatch.setattr(samples, "generate", fake_generate)
    return calls


def step_zero(root, cfg) -> tuple[Sampler, list[dict]]:
    sampler = Sampler(create_run(cfg, root=root), cfg)
    sampler.plan(max_steps=18)
    sampler.prompts = PROMPT
    return sampler, sampler.take(0, torch.nn.Linear(2, 2), None)


def test_a_second_run_from_the_same_start_reads_the_first_ones_answers(tmp_path, tiny_model, answered):
    cfg = from_dict(tiny_config("sft", samples={"max_new_tokens": 32}))
    first, records = step_zero(tmp_path, cfg)
    assert answered == [32] and first.full_cost >= 0 and records[0]["answer"] == "Mix, then bake."
    assert len(list(start_answers.cache_dir(tmp_path).iterdir())) == 1
    second, again = step_zero(tmp_path, cfg)
    assert answered == [32]  # not asked again
    assert again == records and second.run.samples() == records  # written into the second run's folder
    assert second.full_tokens == 4 and second.full_cost == first.full_cost  # what answering in full costs
    assert second.last_cost == first.last_cost  # the schedule spaces the next optional check as before


@pytest.mark.parametrize("change", [
    {"samples": {"max_new_tokens": 48}},  # longer answers
    {"lora": {"rank": 4}},  # another adapter's start
    {"model": {"template": "chatml"}},  # another chat format
])
def test_any_change_to_the_start_answers_again(tmp_path, tiny_model, answered, change):
    step_zero(tmp_path, from_dict(tiny_config("sft", samples={"max_new_tokens": 32})))
    changed = tiny_config("sft", samples={"max_new_tokens": 32})
    for section, values in change.items():
        changed[section] = {**changed.get(section, {}), **values}
    step_zero(tmp_path, from_dict(changed))
    assert len(answered) == 2


def test_changed_weights_answer_again_and_a_later_check_is_never_cached(tmp_path, tiny_model, answered):
    model = shutil.copytree(tiny_model, tmp_path / "my-model")
    cfg = from_dict(tiny_config("sft", model={"name_or_path": str(model)}, samples={"max_new_tokens": 32}))
    sampler, _ = step_zero(tmp_path, cfg)
    sampler.take(5, torch.nn.Linear(2, 2), None)
    assert len(list(start_answers.cache_dir(tmp_path).iterdir())) == 1  # step 0's alone
    weights = next(model.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes())  # re-fetched: a new modification time
    step_zero(tmp_path, cfg)
    assert len(answered) == 3
