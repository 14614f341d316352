"""engine.inference.evaluate on tiny trained runs (SFT, RM, DPO from the SFT): every number of an
evaluation job's results recomputed by hand, the CLI's table, and errors that name the flag to fix."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from engine.cli import main
from engine.config import EvalConfig, Sampling, from_dict
from engine.data.probes import parse_probes
from engine.data.registry import read_registry
from engine.data.rows import load_dataset_for_stage
from engine.inference import evaluate
from engine.job import run as run_job
from engine.runs.degeneration import degenerate
from engine.runs.folder import create_run, resolve_run
from engine.runs.jobs import create_job, list_jobs
from engine.runs.process import start_engine, wait
from engine.runs.status import State
from tests.helpers import DATA, make_weight_run, tiny_config

EVAL_DATA = "sql_dpo_eval"
pytestmark = pytest.mark.usefixtures("float32_runs")  # rewards are recomputed by hand to 1e-3


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and a busy 2-core machine makes two spin)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # the engine processes started here
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tiny_model) -> dict:
    """A tiny SFT and RM run (trained side by side), then a DPO run continuing the SFT adapter
    whose TRL evaluation covers all of sql_dpo_eval in one batch; and a run never trained."""
    dirs = {stage: create_run(from_dict(tiny_config(stage))) for stage in ("sft", "rm")}
    procs = {stage: start_engine(run_dir) for stage, run_dir in dirs.items()}

    def finish(stage: str) -> None:
        status = wait(dirs[stage], procs[stage], interval=0.2)
        procs[stage].wait(timeout=60)
        assert status.state == "completed", dirs[stage].log_file.read_text()[-3000:]

    finish("sft")
    dirs["dpo"] = create_run(from_dict(tiny_config("dpo", init_from=str(dirs["sft"]), data={"eval_dataset": EVAL_DATA},
                                                   training={"per_device_eval_batch_size": 64})))
    procs["dpo"] = start_engine(dirs["dpo"])
    finish("rm")
    finish("dpo")
    dirs["unfinished"] = create_run(from_dict(tiny_config("sft")))  # never trained: no weights
    return dirs


def pairs(n: int | None = None) -> list[dict]:
    return list(load_dataset_for_stage(EVAL_DATA, DATA, preference=True, max_samples=n))


def test_rm_preference_accuracy_is_a_hand_count_of_the_rm_scores(runs):
    from engine.inference.reward import score
    from engine.models.loader import reward_model

    result = evaluate.evaluate(runs["rm"], EvalConfig(dataset=EVAL_DATA, pairs=8))
    rows = pairs(8)
    model, tokenizer = reward_model(runs["rm"])
    prompts = [r["prompt"] for r in rows]
    chosen = score(model, tokenizer, prompts, [r["chosen"][0]["content"] for r in rows])
    rejected = score(model, tokenizer, prompts, [r["rejected"][0]["content"] for r in rows])
    pref = result["preference"]
    assert pref["kind"] == "reward_model" and pref["model"] == runs["rm"].name and pref["pairs"] == 8
    assert pref["accuracy"] == sum(c > r for c, r in zip(chosen, rejected)) / 8
    assert pref["margin"] == pytest.approx(sum(chosen) / 8 - sum(rejected) / 8, abs=1e-5)
    assert [s for pair in pref["pair_scores"] for s in pair] == \
        pytest.approx([s for pair in zip(chosen, rejected) for s in pair], abs=1e-5)
    assert result["generation"] is None and result["settings"]["reward_run"] is None
    assert any("a reward model writes no answers" in note for note in result["notes"])


def sequence_logp(model, tokenizer, prompt: list[dict], answer: str) -> float:
    """log p(answer | prompt) from the rendered strings: the prompt with the generation prompt is a
    prefix of the whole conversation, and the answer is everything after it."""
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": answer}], tokenize=False)
    assert full.startswith(prompt_text)
    ids = tokenizer(full, add_special_tokens=False, return_tensors="pt")["input_ids"]
    n = len(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
    assert ids.shape[1] <= 192  # below cutoff_len: nothing truncated
    with torch.no_grad():
        logps = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
    return logps[n - 1:].gather(-1, ids[0, n:, None]).sum().item()


def test_dpo_implicit_rewards_are_beta_times_the_log_ratio_to_the_sft_model(runs, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = evaluate.evaluate(runs["dpo"], EvalConfig(compare="none"))  # held-out: the run's data.eval_dataset
    pref = result["preference"]
    assert result["settings"]["dataset"] == EVAL_DATA and pref["pairs"] == len(pairs()) == 50
    assert pref["kind"] == "implicit_reward" and pref["beta"] == 0.1 and pref["reference"] == runs["sft"].name
    # one pair by hand, with the adapters unmerged on the base model
    row = pairs()[1]
    tokenizer = AutoTokenizer.from_pretrained(runs["dpo"].adapter_dir)
    policy = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), runs["dpo"].adapter_dir)
    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), runs["sft"].adapter_dir)
    for i, key in enumerate(("chosen", "rejected")):
        answer = row[key][0]["content"]
        expected = 0.1 * (sequence_logp(policy, tokenizer, row["prompt"], answer)
                          - sequence_logp(ref, tokenizer, row["prompt"], answer))
        assert pref["pair_scores"][1][i] == pytest.approx(expected, rel=1e-3, abs=1e-5)
    # and the whole split as TRL's DPO trainer measured it at the end of training (one eval batch)
    trl = next(m for m in reversed(runs["dpo"].metrics()) if "eval_rewards/accuracies" in m)
    assert pref["accuracy"] == pytest.approx(trl["eval_rewards/accuracies"], abs=1e-6)
    for key in ("chosen", "rejected", "margin"):
        trl_key = "eval_rewards/margins" if key == "margin" else f"eval_rewards/{key}"
        assert pref[key] == pytest.approx(trl[trl_key], rel=1e-3, abs=1e-5)
    assert result["generation"] is None and "generation comparison skipped: no models to compare" in result["notes"]


@pytest.fixture(scope="module")
def compared(runs, tiny_model, tmp_path_factory) -> tuple[dict, dict, dict]:
    """A generation comparison with two random adapters among the models (a trained tiny model
    answers only whitespace), scored by the RM run, done as an evaluation job (in this process):
    (results, the job's result.json as read back, models)."""
    root = tmp_path_factory.mktemp("eval-weights")  # kept out of saves/runs: no latest:sft there
    models = {"base": None, "sft": make_weight_run(root, tiny_model, "sft", seed=1), "dpo": runs["dpo"],
              "other": make_weight_run(root, tiny_model, "sft", seed=2)}
    compare = ",".join(label if run is None else f"{label}={run}" for label, run in models.items())
    settings = EvalConfig(dataset=EVAL_DATA, compare=compare, reward_run=str(runs["rm"]), prompts=4,
                          max_new_tokens=12, pairs=2)
    job = create_job(runs["dpo"], "eval", asdict(settings))
    assert run_job(job) == State.COMPLETED, job.status().error
    return job.result(), json.loads(job.result_file.read_text()), models


def test_generation_scores_and_win_rates_are_hand_counts(runs, compared):
    from engine.inference.reward import score
    from engine.models.loader import reward_model

    result, _saved, models = compared
    gen = result["generation"]
    rows = pairs(4)
    assert gen["prompts"] == [r["prompt"][-1]["content"] for r in rows]
    rm, tokenizer = reward_model(runs["rm"])
    hand = {label: score(rm, tokenizer, [r["prompt"] for r in rows], gen["models"][label]["answers"])
            for label in models}
    for label, row in gen["models"].items():
        assert row["scores"] == pytest.approx(hand[label], abs=1e-5)
        assert row["rm_score"] == pytest.approx(sum(hand[label]) / 4, abs=1e-5)
        wins = sum(1 if s > b else 0.5 if s == b else 0 for s, b in zip(row["scores"], gen["models"]["sft"]["scores"]))
        assert row["win_rate"] == wins / 4
        probes = parse_probes(read_registry(DATA)[EVAL_DATA]["probes"])  # declared on the held-out set
        for name, probe in probes.items():  # alignment accuracy: passes, and is not degenerate
            assert row[name] == sum(probe.passes(a) and not degenerate(a) for a in row["answers"]) / 4
        assert row["degenerate"] == sum(map(degenerate, row["answers"])) / 4
    assert gen["models"]["sft"]["win_rate"] == 0.5  # against itself: all ties
    assert gen["models"]["other"]["answers"] != gen["models"]["sft"]["answers"]
    assert 0 < gen["models"]["other"]["mean_length"] <= 12  # generated tokens, up to the end of the turn
    assert {row["run"] for row in gen["models"].values()} == {None, *(p.name for p in models.values() if p)}


def test_answers_are_the_greedy_answers_of_workbench_generate(compared):
    from engine.inference.generate import answer, user_turn
    from engine.models.loader import inference_model

    result, _saved, models = compared
    lm, tokenizer = inference_model(run=models["sft"])
    conversations = [user_turn(p) for p in result["generation"]["prompts"]]
    assert answer(lm, tokenizer, conversations, Sampling(max_new_tokens=12))[0] == \
        result["generation"]["models"]["sft"]["answers"]


def test_the_jobs_result_holds_the_results_and_the_settings(runs, compared):
    result, saved, models = compared
    assert saved == result and evaluate.read_eval(runs["dpo"]) == saved
    assert set(saved) == {"run", "stage", "created", "seconds", "settings", "preference", "generation", "notes"}
    assert saved["run"] == runs["dpo"].name and saved["stage"] == "dpo"
    assert saved["settings"] == {
        "dataset": EVAL_DATA, "pairs": 2, "prompts": 4, "max_new_tokens": 12, "reward_run": runs["rm"].name,
        "compare": ",".join(label if run is None else f"{label}={run}" for label, run in models.items()),
        "baseline": "sft", "probes": ["comment_fraction", "formatted_fraction"], "probe": None,
        "probe_declarations": read_registry(DATA)[EVAL_DATA]["probes"],
        "models": {label: run.name if run else None for label, run in models.items()}}
    assert set(saved["preference"]) == {"kind", "model", "beta", "reference", "pairs", "accuracy", "margin",
                                        "chosen", "rejected", "pair_scores"}
    assert set(saved["generation"]) == {"prompts", "models"}
    assert list(saved["generation"]["models"]) == ["base", "sft", "dpo", "other"]
    for row in saved["generation"]["models"].values():
        assert set(row) == {"run", "rm_score", "win_rate", "comment_fraction", "formatted_fraction", "degenerate",
                            "mean_length", "answers", "scores"}
        assert len(row["answers"]) == len(row["scores"]) == 4
    assert saved["notes"] == []


def test_cli_compares_base_parent_and_run_and_prints_a_table(runs, capsys):
    assert main(["eval", runs["dpo"].name, "--prompts", "2", "--max-new-tokens", "4", "--pairs", "3"]) == 0
    out = capsys.readouterr().out
    saved = evaluate.read_eval(runs["dpo"])
    assert saved["settings"]["models"] == {"base": None, "sft": runs["sft"].name, "dpo": runs["dpo"].name}
    assert saved["settings"]["reward_run"] == resolve_run("latest:rm").name  # the default reward model
    assert saved["settings"]["prompts"] == 2 and saved["preference"]["pairs"] == 3
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("model "))
    assert header.split() == ["model", "run", "RM", "score", "win", "rate", "vs", "sft", "comment_fraction",
                              "formatted_fraction", "degenerate", "mean", "length", "(tokens)"]
    assert [line.split()[:2] for line in lines[lines.index(header) + 1:lines.index(header) + 4]] == [
        ["base", "(base"], ["sft", runs["sft"].name], ["dpo", runs["dpo"].name]]
    assert f"preference (implicit reward, beta 0.1, reference {runs['sft'].name}), 3 pairs: accuracy" in out
    assert f"results: {list_jobs(runs['dpo'], 'eval')[0].result_file}" in out


def test_reward_run_none_skips_the_scores(runs, capsys):
    assert main(["eval", runs["sft"].name, "--dataset", "sql_sft_eval", "--prompts", "1", "--max-new-tokens", "2",
                 "--reward-run", "none"]) == 0
    saved = evaluate.read_eval(runs["sft"])
    assert saved["preference"] is None and list(saved["generation"]["models"]) == ["base", "sft"]
    assert all(row["rm_score"] is None and row["win_rate"] is None for row in saved["generation"]["models"].values())
    assert "RM scores and win rates skipped: --reward-run none" in saved["notes"]
    assert "note: preference accuracy skipped: it measures runs trained on preference pairs, this is an sft run" in capsys.readouterr().out


@pytest.mark.parametrize("args, error", [
    (["no-such-run"], "RUN: run 'no-such-run' not found"),
    (["{unfinished}", "--dataset", EVAL_DATA], "RUN: run {unfinished} has no saved adapter or model yet"),
    (["{rm}"], "--dataset: run {rm} has no data.eval_dataset; name a registered held-out dataset"),
    (["{dpo}", "--dataset", "nope"], "--dataset: 'nope' is not registered in"),
    (["{dpo}", "--reward-run", "{sft}"], "--reward-run: run {sft} is an sft run; pick a reward model run"),
    (["{dpo}", "--reward-run", "nope"], "--reward-run: run 'nope' not found"),
    (["{dpo}", "--compare", "base,sft"], "--compare: 'sft' should be LABEL=RUN (e.g. sft=latest:sft) or base"),
    (["{dpo}", "--compare", "base,rm={rm}"], "--compare: run {rm} is an rm run; pick a run whose weights write answers"),
    (["{dpo}", "--compare", "a={sft},a={dpo}"], "--compare: label 'a' appears twice"),
    (["{dpo}", "--prompts", "0"], "--prompts: 0 is below the minimum 1"),
    (["{dpo}", "--pairs", "two"], "--pairs: expected int, got 'two'"),
    (["{dpo}", "--probes", "comment_fraction,bogus"], "--probes: 'bogus' is not a probe of the held-out dataset"),
    (["{dpo}", "--probe", "numbered"], "--probe: 'numbered' should be NAME KIND VALUE"),
])
def test_errors_name_the_argument_to_fix(runs, capsys, args, error):
    names = {key: run_dir.name for key, run_dir in runs.items()}
    before = {key: list_jobs(run) for key, run in runs.items()}
    assert main(["eval", *(a.format(**names) for a in args)]) == 2
    assert capsys.readouterr().err.startswith("error: " + error.format(**names))
    assert {key: list_jobs(run) for key, run in runs.items()} == before  # refused before any job exists
