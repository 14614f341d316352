"""The Runs tab's handlers against hand-made run folders."""

from __future__ import annotations

import json
import os

from tests.helpers import dpo_metrics, make_run, sft_metrics
from webui import samples_view
from webui.tabs import runs


def row_of(run) -> dict:
    rows = {r[0]: dict(zip(runs.HEADERS, r)) for r in runs.runs_table()}
    return rows[run.name]


def test_table_lists_every_run_with_final_metrics(runs_env, dead_pid):
    sft = make_run("sft", "completed", metrics=sft_metrics(), stamp="20250101-000001")
    dpo = make_run("dpo", "stopped", metrics=dpo_metrics(), stamp="20250101-000002", step=2)
    stale = make_run("sft", "running", pid=dead_pid, stamp="20250101-000003", max_steps=None, step=0)
    table = runs.runs_table()
    assert [r[0] for r in table] == [stale.name, dpo.name, sft.name]  # newest first
    row = row_of(sft)
    assert (row["stage"], row["model"], row["dataset"], row["state"]) == ("sft", "tiny", "sql_sft", "completed")
    assert row["duration"] == "1:30" and row["step"] == "4/4"
    assert row["final metrics"] == "loss 0.6667 · eval_loss 1.1"  # each stage its own summary
    row = row_of(dpo)
    assert (row["state"], row["step"], row["dataset"]) == ("stopped", "2/4", "sql_dpo")
    assert row["final metrics"] == ("loss 0.5 · rewards/accuracies 1 · rewards/margins 0.06 · "
                                    "eval_rewards/accuracies 0.8 · eval_rewards/margins 0.03")
    row = row_of(stale)
    assert (row["state"], row["step"], row["final metrics"]) == ("crashed", "0/?", "")


def test_a_reward_model_and_a_ppo_run_show_their_own_metrics(runs_env):
    rm = make_run("rm", metrics=[{"step": 4, "loss": 0.4, "accuracy": 0.75}, {"step": 4, "eval_accuracy": 0.9}])
    ppo = make_run("ppo", metrics=[{"step": 0, "eval_objective/scores": -0.5},
                                   {"step": 4, "loss": 0.1, "objective/scores": 0.25, "objective/kl": 2.0}])
    assert row_of(rm)["final metrics"] == "loss 0.4 · accuracy 0.75 · eval_accuracy 0.9"
    assert row_of(ppo)["final metrics"] == "objective/scores 0.25 · objective/kl 2 · eval_objective/scores -0.5"


def test_table_survives_a_broken_config(runs_env):
    run = make_run("sft", "completed")
    (run.config_file).write_text("stage: [unclosed\n")
    row = row_of(run)
    assert [row[k] for k in ("stage", "model", "dataset", "state")] == ["?", "?", "?", "completed"]


def test_refresh_rebuilds_table_and_choices(runs_env):
    run = make_run("sft", "completed")
    out = runs.refresh()
    assert [r[0] for r in out["table"]] == [run.name]
    assert out["overlay_runs"]["choices"] == out["view_run"]["choices"] == [run.name]


def test_overlay_metric_choices_and_figure(runs_env):
    a = make_run("sft", "completed", metrics=sft_metrics(), stamp="20250101-000001")
    b = make_run("dpo", "completed", metrics=dpo_metrics(), stamp="20250101-000002")
    update = runs.metric_choices([a.name, b.name], None)
    assert update["value"] == "loss" and "rewards/margins" in update["choices"]
    assert "eval_rewards/accuracies" in update["choices"]
    assert runs.metric_choices([a.name], "rewards/margins")["value"] == "loss"  # not logged by SFT
    assert runs.metric_choices([], None)["value"] is None
    fig = runs.overlay([a.name, b.name, "20990101-000000-sft-deleted"], "loss")
    assert [t.name for t in fig.data] == [a.name, b.name]
    assert runs.overlay([], None).data == ()


def test_view_shows_config_and_log(runs_env):
    run = make_run("dpo", "completed", log="hello\nworld\n")
    run.append_samples([{"step": s, "prompt": "Name a bird.", "answer": f"A robin ({s})", "tokens": 3, "ended": True}
                        for s in (0, 4)])
    out = runs.view(run.name)
    config, samples = out["config"], out["samples"]
    assert config == (run.config_file).read_text() and "stage: dpo" in config
    assert out["log"] == "hello\nworld"
    assert out["sample_step"]["value"] == 4 and "A robin (0)" in samples and "A robin (4)" in samples
    assert "A robin (0)" in samples_view.show_run(run.name, 2) and "step 4" not in samples_view.show_run(run.name, 2)
    assert runs.view(None)["config"] == ""


def test_delete_asks_then_deletes(runs_env):
    keep = make_run("sft", "completed", stamp="20250101-000001")
    gone = make_run("sft", "failed", stamp="20250101-000002")
    asked = runs.ask_delete(gone.name)
    assert asked["confirm_row"]["visible"] and gone.name in asked["message"] and gone.path.exists()
    assert asked["pending"] == gone.name
    out = runs.confirm_delete(gone.name, [gone.name, keep.name], asked["pending"])
    assert not gone.path.exists() and keep.path.exists()
    assert not out["confirm_row"]["visible"] and out["message"] == f"Deleted {gone.name}." and out["pending"] is None
    assert [r[0] for r in out["table"]] == [keep.name]
    assert out["overlay_runs"]["value"] == [keep.name] and out["view_run"]["value"] is None
    assert runs.cancel_delete()["confirm_row"]["visible"] is False and runs.cancel_delete()["pending"] is None


def test_delete_needs_its_first_step_for_the_same_run(runs_env):
    # The confirm step is an HTTP endpoint like any other: called without the first step in the
    # session (nothing pending) or after the pick changed, it deletes nothing.
    a = make_run("sft", "completed", stamp="20250101-000001")
    b = make_run("sft", "completed", stamp="20250101-000002")
    message = runs.confirm_delete(a.name)["message"]
    assert "nothing to confirm" in message.lower() and a.path.exists()
    pending = runs.ask_delete(a.name)["pending"]
    message = runs.confirm_delete(b.name, None, pending)["message"]
    assert "changed" in message and a.path.exists() and b.path.exists()


def test_delete_refuses_a_running_run_and_foreign_paths(runs_env, tmp_path):
    live = make_run("sft", "running", pid=os.getpid())
    asked = runs.ask_delete(live.name)
    assert not asked["confirm_row"]["visible"] and "still running" in asked["message"] and asked["pending"] is None
    message = runs.confirm_delete(live.name, None, live.name)["message"]  # started after the question
    assert "stop it first" in message and live.path.exists()
    outside = tmp_path / "outside"
    (outside / "x").mkdir(parents=True)
    (outside / "x" / "config.yaml").write_text("stage: sft\n")
    for name in ("../outside/x", str(outside / "x"), "..", ""):
        assert runs.confirm_delete(name, None, name)["message"].startswith("❌")
        assert runs.ask_delete(name)["pending"] is None
    assert (outside / "x" / "config.yaml").exists()


def test_table_flags_runs_with_health_warnings(runs_env):
    coarse = {"code": "coarse_accuracy", "message": "rewards/accuracies was exactly 0 or 1 ...", "step": 5}
    flagged = make_run("dpo", "completed", name="flagged", warnings=[coarse])
    plain = make_run("sft", "completed", name="plain", warnings=[])
    old = make_run("sft", "completed", name="old")
    old_status = json.loads((old.path / "status.json").read_text())  # a run from before engine.runs.health
    (old.path / "status.json").write_text(json.dumps({**old_status, "warning": "non-finite values in loss"}))
    assert row_of(flagged)["warnings"] == "⚠️ coarse_accuracy"
    assert row_of(plain)["warnings"] == "" and row_of(old)["warnings"] == "⚠️ warning"
