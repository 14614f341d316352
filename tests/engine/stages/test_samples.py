"""engine.stages.samples and the run-folder callback: the model's answers to fixed prompts during
training, written to samples.jsonl, read by the degeneration alarms, and (samples.stop_on_alarm)
a run stopped at an alarm with the weights of the last sample step without one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerControl, TrainerState

from engine.cli import main
from engine.config import from_dict
from engine.data.rows import load_splits
from engine.runs import degeneration
from engine.runs.folder import create_run, list_runs, swap_weights
from engine.stages import samples
from engine.stages.callbacks import RunFolderCallback, StopRequest
from engine.stages.samples import Sampler, sample_prompts
from tests.helpers import GOOD, LOOP, PARAGRAPH, REPO, tiny_config


def test_the_smoke_dpo_run_writes_its_samples(saves, capsys):
    assert main(["models", "make-tiny"]) == 0
    assert main(["train", str(REPO / "examples/smoke/sft.yaml")]) == 0
    assert main(["train", str(REPO / "examples/smoke/dpo.yaml")]) == 0
    run = list_runs()[0]
    records = run.samples()
    steps = sorted({r["step"] for r in records})
    assert steps[0] == 0 and len(steps) >= 2 and steps[-1] == run.status().max_steps
    assert all({"step", "prompt", "answer", "tokens", "ended", "kl"} <= set(r) for r in records)
    assert records[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # step 0: the policy is its reference
    assert len([r for r in records if r["step"] == 0]) == run.config().samples.count


def test_sample_prompts_come_from_the_eval_set_or_the_users_lines(tiny_model):
    cfg = from_dict(tiny_config("dpo", data={"eval_dataset": "sql_dpo_eval"}, samples={"count": 2}))
    prompts = sample_prompts(cfg)
    _train, held_out = load_splits(cfg, preference=True)
    assert len(held_out) == 50 and prompts == [held_out[0]["prompt"], held_out[25]["prompt"]]  # spread out
    assert prompts[0][-1]["content"].startswith("Write a SQL query. Table departments")
    own = from_dict(tiny_config("sft", samples={"prompts": "How do I bake a cake?\n\n  Name three birds. "}))
    assert [p[-1]["content"] for p in sample_prompts(own)] == ["How do I bake a cake?", "Name three birds."]
    assert Sampler.for_run(None, from_dict(tiny_config("rm"))) is None  # a reward model writes no answers
    assert Sampler.for_run(None, from_dict(tiny_config("sft", samples={"count": 0}))) is None


class FakeGeneration:
    def __init__(self, texts):
        self.texts, self.lengths, self.ended = texts, [len(t.split()) for t in texts], [True] * len(texts)


class AdapterLike(torch.nn.Sequential):
    """Two layers, the second trained, saved as PEFT saves an adapter (the trained layer alone)."""

    peft_config = {"default": None}

    def save_pretrained(self, out, selected_adapters=None):
        assert selected_adapters == ["default"]  # never TRL's "ref" copy
        out.mkdir(parents=True)
        torch.save(self[1].weight.detach().clone(), out / "weight.pt")


def training(tmp_path, monkeypatch, script, stop_on_alarm=False):
    """Eight steps of a LoRA-like model (half its weights train) through the callback's events, the
    sample answers taken from ``script(step)``; returns (run, model, stop request, weights by step)."""
    cfg = from_dict(tiny_config("dpo", samples={"stop_on_alarm": stop_on_alarm, "every": 2}))
    run = create_run(cfg, root=tmp_path)
    sampler = Sampler(run, cfg)
    step = {"now": 0}
    monkeypatch.setattr(samples, "sample_prompts", lambda cfg: [[{"role": "user", "content": "How do I bake?"}]])
    monkeypatch.setattr(samples, "generate", lambda *a, **k: FakeGeneration([script(step["now"])]))
    monkeypatch.setattr(samples, "drift", lambda model, gen: None)
    stop = StopRequest()
    callback = RunFolderCallback(run, stop=stop, sampler=sampler)
    model = AdapterLike(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    model[0].requires_grad_(False)
    args = SimpleNamespace(per_device_train_batch_size=8, gradient_accumulation_steps=1, world_size=1,
                           logging_steps=1, output_dir=str(run.checkpoints_dir), fp16=False)
    state, control, seen = TrainerState(max_steps=8), TrainerControl(), {}
    events = {"model": model, "processing_class": SimpleNamespace(save_pretrained=lambda out: None)}
    callback.on_train_begin(args, state, control, **events)
    while state.global_step < 8 and not control.should_training_stop:
        callback.on_step_begin(args, state, control, **events)
        with torch.no_grad():
            model[1].weight.add_(1.0)  # an optimiser step
        state.global_step = step["now"] = state.global_step + 1
        seen[state.global_step] = model[1].weight.detach().clone()
        callback.on_step_end(args, state, control, **events)
    callback.on_train_end(args, state, control, **events)
    return run, model, stop, seen


def test_a_run_that_starts_looping_gets_the_alarm_quoting_the_loop(tmp_path, monkeypatch):
    run, _model, stop, _seen = training(tmp_path, monkeypatch, lambda s: PARAGRAPH if s < 6 else LOOP)
    [warning] = run.status().warnings
    assert warning["code"] == degeneration.LOOP and warning["step"] == 6
    assert "1 of 1 sample answers loop now" in warning["message"] and "to 'How do I bake?': '1. 1. 1." in warning["message"]
    assert "stop by step 4 (the last check without an alarm)" in warning["message"]
    assert [r["step"] for r in run.samples()] == [0, 2, 4, 6, 8] and stop.reason is None  # no stop asked
    good, _model, _stop, _seen = training(tmp_path, monkeypatch, lambda s: PARAGRAPH if s < 6 else GOOD)
    assert good.status().warnings == []
    recovered, _model, _stop, _seen = training(tmp_path, monkeypatch,
                                               lambda s: LOOP if s == 6 else PARAGRAPH if s < 6 else GOOD)
    [kept] = recovered.status().warnings  # looped at step 6 only: the alarm stays, naming step 6
    assert kept["code"] == degeneration.LOOP and kept["step"] == 6


def test_stop_on_alarm_keeps_the_weights_of_the_last_sample_step_without_one(tmp_path, monkeypatch):
    run, model, stop, seen = training(tmp_path, monkeypatch, lambda s: PARAGRAPH if s < 6 else LOOP,
                                      stop_on_alarm=True)
    assert stop.requested and not stop.failed
    assert "Stopped by samples.stop_on_alarm" in stop.reason and "those of step 4" in stop.reason
    assert max(seen) == 6  # stopped at the alarm, and the weights are step 4's again
    assert torch.equal(model[1].weight, seen[4])


def test_the_automatic_schedule_keeps_sampling_near_a_tenth_of_the_run(tmp_path):
    auto = Sampler(create_run(from_dict(tiny_config("dpo")), root=tmp_path), from_dict(tiny_config("dpo")))
    auto.clock = lambda: 1000.0  # a fixed clock: the budget is exact
    auto.plan(max_steps=20)
    auto.prompts = [[{"role": "user", "content": "How do I bake?"}]]
    assert auto.every == 2 and auto.due(0, 20) and auto.marks == {5, 10, 15}
    auto.last_step, auto.last_cost = 0, 10.0  # answering took 10 s
    auto.last_end = 1000.0 - 50  # and 50 s of training followed: answering now would be 1/6 of it
    assert not auto.due(2, 20) and not auto.due(3, 20)
    assert auto.due(5, 20) and auto.due(20, 20)  # the quarters and the end are always answered
    auto.last_end = 1000.0 - 95
    assert auto.due(4, 20) and not auto.due(7, 20)
    fixed = Sampler(None, from_dict(tiny_config("dpo", samples={"every": 2})))
    fixed.plan(max_steps=20)
    fixed.clock = auto.clock
    fixed.prompts, fixed.last_step, fixed.last_cost, fixed.last_end = auto.prompts, 0, 10.0, 1000.0
    assert fixed.due(2, 20)  # an explicit every is kept, whatever it costs


@pytest.mark.parametrize("max_steps, marks", [(18, {5, 9, 14}), (4, {1, 2, 3}), (2, {1}), (1, set()), (100, {25, 50, 75})])
def test_every_run_is_checked_at_its_quarters(max_steps, marks):
    assert samples.check_steps(max_steps) == marks


def test_checks_between_the_start_and_the_end_are_cut_to_fit_the_budget(tmp_path):
    cfg = from_dict(tiny_config("dpo", samples={"max_new_tokens": 64}))
    sampler = Sampler(create_run(cfg, root=tmp_path), cfg)
    sampler.clock = lambda: 1000.0  # a fixed clock: the budget is exact
    sampler.plan(max_steps=18)
    sampler.prompts = [[{"role": "user", "content": "How do I bake?"}]]
    sampler.full_cost, sampler.full_tokens = 4.0, 64  # the start's answers: 4 s for 64 tokens
    sampler.start = 1000.0 - 9 * 10.0  # 9 steps of 10 s each so far, nothing spent answering
    # budget: a tenth of 18 steps x 10 s = 18 s; the start and the end take 8 s; 10 s for 3 checks: 53 tokens
    assert sampler.limit(0) == 64 and sampler.limit(18) == 64 and sampler.limit(9) == 53
    sampler.start = 1000.0 - 9 * 1.0  # 1 s steps: the budget cannot pay; checks are cut, never dropped
    assert sampler.limit(9) == samples.MIN_CHECK_TOKENS and sampler.due(9, 18)
    assert sampler.next_check(5) == 9 and sampler.next_check(14) == 18 and sampler.next_check(18) is None
    fixed = Sampler(None, from_dict(tiny_config("dpo", samples={"every": 3, "max_new_tokens": 64})))
    fixed.plan(max_steps=18)
    fixed.prompts, fixed.full_cost = sampler.prompts, 4.0
    assert fixed.limit(9) == 64 and fixed.next_check(9) == 12  # an explicit every: answered in full, as asked


def test_the_status_says_what_the_engine_does_and_when_it_checks_next(tmp_path, monkeypatch):
    writes = []
    monkeypatch.setattr(samples.RunFolder, "update_status", lambda self, **changes: writes.append(changes),
                        raising=False)
    run, _model, _stop, _seen = training(tmp_path, monkeypatch, lambda s: PARAGRAPH)
    activities = [w["activity"] for w in writes if w.get("activity")]
    assert activities[0] == "answering the 1 sample prompt at step 0 (up to 64 tokens each)"
    assert [w["next_check"] for w in writes if "next_check" in w] == [2, 4, 6, 8, None]


def test_a_run_that_went_on_after_an_alarm_keeps_its_last_clean_weights_to_swap_in(tmp_path, monkeypatch):
    run, model, _stop, seen = training(tmp_path, monkeypatch, lambda s: PARAGRAPH if s < 6 else LOOP)
    assert run.status().clean_step == 4 and torch.equal(model[1].weight, seen[8])  # the end's weights stay in
    assert torch.equal(torch.load(run.clean_dir / "weight.pt"), seen[4])
    torch.save(seen[8], (run.adapter_dir.mkdir() or run.adapter_dir) / "weight.pt")  # the stage's final save
    run.update_status(state="completed", step=8)
    assert swap_weights(run) == 4
    assert torch.equal(torch.load(run.adapter_dir / "weight.pt"), seen[4])
    assert (run.status().weights_step, run.status().clean_step) == (4, 8)
    assert swap_weights(run) == 8 and torch.equal(torch.load(run.adapter_dir / "weight.pt"), seen[8])
    clean, _model, _stop, _seen = training(tmp_path, monkeypatch, lambda s: PARAGRAPH)
    assert clean.status().clean_step is None and not clean.clean_dir.exists()  # no alarm: nothing more kept
    clean.update_status(state="completed")
    with pytest.raises(FileNotFoundError, match="keeps no other weights"):
        swap_weights(clean)
