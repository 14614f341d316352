"""The Evaluate tab's handlers, called as Gradio calls them: run pickers and their defaults, saved
results shown as table + chart + answers, and a real tiny evaluation job started, followed (also
after a "server restart") and collected. The runs are made directly with peft on the tiny model
(no training), in a saves/ of the test's own."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from engine.config import from_dict
from engine.inference.evaluate import table_headers
from engine.runs.folder import create_run
from engine.runs.jobs import create_job, list_jobs
from engine.runs.status import State
from tests.helpers import make_run, make_weight_run, tiny_config
from webui.tabs import evaluate


def make_rm_run(root: Path, model_dir: Path, seed: int = 3) -> Path:
    """A completed RM run: a random LoRA adapter on the sequence-classification model, with the
    score head saved beside it (as the RM stage saves it)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run_dir = create_run(from_dict({**tiny_config("rm"), "name": f"w{seed}"}), root=root)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="SEQ_CLS",
                                                 modules_to_save=["score"], init_lora_weights=False))
    model.save_pretrained(run_dir.adapter_dir)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(run_dir.adapter_dir)
    run_dir.update_status(state="completed", step=4, max_steps=4)
    return run_dir


@pytest.fixture
def eval_env(runs_env, tiny_model) -> dict[str, Path]:
    """saves/ with the tiny model, an SFT adapter, a DPO adapter continuing it, an RM run and a
    failed run without weights."""
    (runs_env / "models").mkdir()
    (runs_env / "models" / "tiny").symlink_to(tiny_model)
    sft = make_weight_run(runs_env / "runs", tiny_model, "sft", seed=1)
    dpo = make_weight_run(runs_env / "runs", tiny_model, "dpo", seed=2, init_from=sft)
    rm = make_rm_run(runs_env / "runs", tiny_model)
    failed = make_run("sft", state="failed", stamp="20200101-000000")
    return {"sft": sft, "dpo": dpo, "rm": rm, "failed": failed}


def values(choices: list[tuple[str, str]]) -> list[str]:
    return [value for _label, value in choices]


def test_pickers_offer_finished_runs_and_the_base(eval_env):
    out = evaluate.refresh(None)
    run, models, reward = out["run"], out["models"], out["reward"]
    names = {eval_env[k].name for k in ("sft", "dpo", "rm")}
    assert set(values(run["choices"])) == names and run["value"] in names  # the newest run is picked
    assert values(models["choices"]) == [evaluate.BASE_VALUE, *sorted(names - {eval_env["rm"].name}, reverse=True)]
    assert values(reward["choices"]) == [evaluate.NONE, eval_env["rm"].name]
    kept = evaluate.refresh(eval_env["sft"].name)["run"]
    assert "value" not in kept and set(values(kept["choices"])) == names  # a pick is kept: no value is sent


def test_picking_a_dpo_run_fills_in_its_comparison(eval_env):
    out = evaluate.select_run(eval_env["dpo"].name)
    dataset, models, reward, status, timer = (out[k] for k in ("dataset", "models", "reward", "status", "timer"))
    assert dataset["value"] == "sql_dpo_eval"  # held-out twin of sql_dpo
    assert ("sql_dpo (the run's training set: not held out)", "sql_dpo") == dataset["choices"][-1]
    assert "sql_sft_eval" not in values(dataset["choices"])  # a DPO run is measured on pairs
    assert models["value"] == [evaluate.BASE_VALUE, eval_env["sft"].name, eval_env["dpo"].name]
    assert reward["value"] == eval_env["rm"].name and status == "" and timer.active is False
    assert out["summary"].startswith("No results for this run yet") and out["answers"].empty
    assert evaluate.select_run(eval_env["rm"].name)["models"]["value"] == []  # a reward model writes no answers


REGISTRY = {name: {"ranking": ranking} for name, ranking in (
    ("sql_sft", False), ("sql_sft_eval", False), ("sql_dpo", True), ("sql_dpo_eval", True), ("penn_sft", False),
    ("penn_pref", True), ("penn_pref_eval", True), ("howto_train", True), ("howto_eval", True))}


def test_held_out_sets_for_a_run_on_pairs_are_preference_sets_and_the_training_set_comes_last():
    held_out = evaluate.held_out_sets(REGISTRY, "dpo", "penn_pref", None)
    assert held_out.value == "penn_pref_eval" and "penn_pref_eval" in held_out.hint  # not sql_sft_eval
    assert values(held_out.choices) == ["sql_dpo", "sql_dpo_eval", "penn_pref_eval", "howto_train", "howto_eval",
                                        "penn_pref"]
    assert held_out.choices[-1][0] == "penn_pref (the run's training set: not held out)"
    assert evaluate.held_out_sets(REGISTRY, "rm", "penn_pref", None).choices == held_out.choices


def test_held_out_sets_propose_the_runs_own_eval_set_else_the_twin_of_its_training_set():
    assert evaluate.held_out_sets(REGISTRY, "dpo", "penn_pref", "sql_dpo_eval").value == "sql_dpo_eval"
    assert evaluate.held_out_sets(REGISTRY, "dpo", "howto_train", None).value == "howto_eval"  # X_train -> X_eval
    assert evaluate.held_out_name("sql_sft") == "sql_sft_eval" and evaluate.held_out_name("a_train") == "a_eval"
    sft = evaluate.held_out_sets(REGISTRY, "sft", "sql_sft", None)
    assert sft.value == "sql_sft_eval" and "sql_sft" in values(sft.choices) and "sql_dpo" in values(sft.choices)


def test_held_out_sets_propose_nothing_without_a_twin_and_say_what_to_do():
    held_out = evaluate.held_out_sets(REGISTRY, "sft", "penn_sft", None)
    assert held_out.value is None
    assert held_out.hint == ("No held-out set of penn_sft found (no penn_sft_eval is registered): pick a dataset of "
                             "the same task, or register one on the Datasets tab.")
    assert "preference (ranking) dataset" in evaluate.held_out_sets(REGISTRY, "dpo", "my_pairs", None).hint


def test_a_dpo_run_on_pairs_without_a_held_out_twin_gets_no_sft_set(runs_env, tmp_path):
    """The user's own pairs, with no my_pairs_eval: nothing is proposed (it used to be sql_sft_eval)."""
    folder = tmp_path / "datasets"
    folder.mkdir()
    entries = {name: {"file_name": f"{name}.json", "ranking": info["ranking"]} for name, info in REGISTRY.items()}
    (folder / "dataset_info.json").write_text(json.dumps({**entries, "my_pairs": {"file_name": "p.json",
                                                                                   "ranking": True}}))
    run = create_run(from_dict({**tiny_config("dpo", data={"dataset": "my_pairs", "dataset_dir": str(folder)}),
                                "name": "mine"}))
    dataset = evaluate.select_run(run.name)["dataset"]
    assert dataset["value"] is None and "No held-out set of my_pairs found" in dataset["info"]
    assert "sql_sft_eval" not in values(dataset["choices"]) and values(dataset["choices"])[-1] == "my_pairs"


def test_the_widgets_become_an_eval_config_with_models_labelled_by_stage(eval_env, tiny_model):
    sft2 = make_weight_run(eval_env["sft"].path.parent, tiny_model, "sft", seed=4)
    picked = [evaluate.BASE_VALUE, eval_env["sft"].name, sft2.name, eval_env["dpo"].name]
    assert list(evaluate.labels(picked).values()) == ["base", "sft", "sft-2", "dpo"]
    settings = evaluate.settings("sql_dpo_eval", picked, "none", 3.0, 16.0, "", ["formatted_fraction"])
    assert settings.compare == f"base,sft={eval_env['sft']},sft-2={sft2},dpo={eval_env['dpo']}"
    assert (settings.prompts, settings.max_new_tokens, settings.pairs) == (3, 16, None)
    assert settings.reward_run == "none" and settings.probes == "formatted_fraction" and settings.probe is None
    extra = evaluate.settings("sql_dpo_eval", picked, "none", 3, 16, "", [], "numbered", "starts_with", "1.")
    assert extra.probe == "numbered starts_with 1." and extra.probes is None  # none picked: every declared one
    assert evaluate.probe_choices(eval_env["dpo"].name, "sql_dpo_eval")["choices"] == ["comment_fraction",
                                                                                      "formatted_fraction"]


def saved_result(run, sft) -> dict:
    """An evaluation's result as engine.inference.evaluate returns it (two prompts, base vs sft vs dpo)."""
    row = lambda name, scores, win, comment: {  # noqa: E731
        "run": name, "rm_score": sum(scores) / 2, "win_rate": win, "comment_fraction": comment,
        "formatted_fraction": 0.0, "degenerate": 0.5, "mean_length": 7.5, "answers": [f"{name} answer 1", ""],
        "scores": scores}
    return {
        "run": run.name, "stage": "dpo", "created": "2026-01-02T03:04:05", "seconds": 9.0,
        "settings": {"dataset": "sql_dpo_eval", "pairs": 4, "prompts": 2, "max_new_tokens": 16,
                     "reward_run": "some-rm", "baseline": "sft", "probes": ["comment_fraction", "formatted_fraction"],
                     "models": {"base": None, "sft": sft.name, "dpo": run.name}},
        "preference": {"kind": "implicit_reward", "model": run.name, "beta": 0.1, "reference": sft.name, "pairs": 4,
                       "accuracy": 0.75, "margin": 0.125, "chosen": 0.5, "rejected": 0.375,
                       "pair_scores": [[1, 0], [1, 0], [1, 0], [0, 1]]},
        "generation": {"prompts": ["first prompt", "second prompt"],
                       "models": {"base": row(None, [0.0, 0.0], 0.25, 0.0), "sft": row(sft.name, [0.5, 0.25], 0.5, 0.0),
                                  "dpo": row(run.name, [1.0, 0.5], 1.0, 0.5)}},
        "notes": ["a note"],
    }


def test_a_saved_evaluation_is_shown_when_its_run_is_picked(eval_env):
    result = saved_result(eval_env["dpo"], eval_env["sft"])
    job = create_job(eval_env["dpo"], "eval", {})
    job.write_result(result)
    job.update_status(state=State.COMPLETED, started=1.0, ended=10.0)
    labels = {name: label for label, name in evaluate.run_choices()}
    assert labels[eval_env["dpo"].name].endswith("· dpo · completed · evaluated")
    assert not labels[eval_env["sft"].name].endswith("evaluated")
    out = evaluate.select_run(eval_env["dpo"].name)
    status, summary, table, chart, answers = (out[k] for k in ("status", "summary", "table", "chart", "answers"))
    assert status == f"✅ evaluated **{eval_env['dpo'].name}** in 9 s."
    assert "**Preference accuracy 75%** on 4 held-out pairs (DPO implicit reward, β=0.1" in summary
    assert "margin 0.125" in summary and "ℹ️ a note" in summary and "`sql_dpo_eval`" in summary
    assert list(table.columns) == table_headers(result)
    assert table.values.tolist() == [
        ["base", "(base model)", "0", "0.25", "0", "0", "0.5", "7.5"],
        ["sft", eval_env["sft"].name, "0.375", "0.5", "0", "0", "0.5", "7.5"],
        ["dpo", eval_env["dpo"].name, "0.75", "1", "0.5", "0", "0.5", "7.5"]]
    bars = {trace.name: list(trace.y) for trace in chart.data}
    assert list(chart.data[0].x) == ["base", "sft", "dpo"]
    assert bars == {"win rate vs sft": [0.25, 0.5, 1.0], "comment_fraction": [0.0, 0.0, 0.5],
                    "formatted_fraction": [0.0, 0.0, 0.0]}
    assert list(answers.columns) == ["prompt", "base", "sft", "dpo"]
    assert answers.values.tolist()[1] == ["second prompt", "(empty)\n\n[RM 0]", "(empty)\n\n[RM 0.25]",
                                          "(empty)\n\n[RM 0.5]"]
    assert answers.values.tolist()[0][2] == f"{eval_env['sft'].name} answer 1\n\n[RM 0.5]"


def test_evaluate_starts_a_job_that_a_restarted_page_follows_to_its_results(eval_env, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the tiny model runs fastest on one thread
    dpo, sft, rm = (eval_env[k].name for k in ("dpo", "sft", "rm"))
    started = evaluate.start(dpo, "sql_dpo_eval", [evaluate.BASE_VALUE, sft, dpo], rm, 2, 8, "", [])
    assert started["status"].startswith(f"⏳ evaluating **{dpo}**") and started["timer"].active
    [job] = list_jobs(eval_env["dpo"], "eval")
    # a server restart: a fresh page picks the run being evaluated (not the newest, the RM run) and
    # follows the job it finds in the run folder
    assert evaluate.refresh(None)["run"]["value"] == dpo or job.status().state == State.COMPLETED
    assert evaluate.select_run(dpo)["timer"].active or job.status().state == State.COMPLETED
    deadline = time.time() + 240
    while (out := evaluate.poll(dpo))["timer"].active:  # polled as the tab's timer polls, until it stops itself
        assert out["status"].startswith(f"⏳ evaluating **{dpo}**") and time.time() < deadline, job.log_file.read_text()
        time.sleep(0.5)
    status, summary, table, chart, answers = (out[k] for k in ("status", "summary", "table", "chart", "answers"))
    assert status.startswith(f"✅ evaluated **{dpo}**"), job.log_file.read_text()[-3000:]
    saved = job.result()
    assert saved["settings"]["models"] == {"base": None, "sft": sft, "dpo": dpo}
    assert saved["settings"]["reward_run"] == rm and saved["settings"]["prompts"] == 2
    assert saved["preference"]["reference"] == sft and saved["preference"]["pairs"] == 50
    assert "Preference accuracy" in summary and table["model"].tolist() == ["base", "sft", "dpo"]
    assert [t.name for t in chart.data][0] == "win rate vs sft" and len(answers) == 2
    assert "preference accuracy: 50 held-out pairs" in job.log_file.read_text()
    # the results come back when the run is picked again, without running anything
    assert evaluate.select_run(dpo)["summary"] == summary


def test_evaluate_reports_what_to_fix_and_starts_nothing(eval_env):
    dpo, sft = eval_env["dpo"].name, eval_env["sft"].name
    out = evaluate.start(dpo, "sql_dpo_eval", [evaluate.BASE_VALUE], sft, 2, 8, "", [])
    assert out["status"] == f"❌ --reward-run: run {sft} is an sft run; pick a reward model run"
    assert not out["timer"].active
    status = evaluate.start(dpo, "sql_dpo_eval", [evaluate.BASE_VALUE], "none", 0, 8, "", [])["status"]
    assert status == "❌ prompts: 0 is below the minimum 1"
    assert list_jobs(eval_env["dpo"]) == []
    assert evaluate.start(None, None, [], None, 2, 8, "", [])["status"] == "❌ no run selected"
    status = evaluate.start(dpo, None, ["../../etc"], None, 2, 8, "", [])["status"]
    assert status.startswith("❌ run '../../etc' not found")


def test_the_reward_run_must_be_a_run_of_the_runs_folder(runs_env, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "config.yaml").write_text("stage: rm\n")
    run = make_run("sft", "completed")
    out = evaluate.start(run.name, "sql_sft_eval", [evaluate.BASE_VALUE], str(tmp_path / "elsewhere"), 2, 8, None, [])
    assert out["status"].startswith("❌ run ") and "not found" in out["status"] and out["timer"].active is False
