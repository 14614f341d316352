"""webui.charts: figures from hand-made metric records."""

from __future__ import annotations

import math

from tests.helpers import dpo_metrics, sft_metrics
from webui import charts


def names(fig) -> list[str]:
    return [trace.name for trace in fig.data]


def annotation_texts(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def test_loss_chart_has_train_and_dashed_eval_curves():
    fig = charts.line_chart(sft_metrics(), charts.LOSS.keys, charts.LOSS.title)
    assert names(fig) == ["loss", "eval_loss"]
    train, evaluation = fig.data
    assert list(train.x) == [1, 2, 3] and list(train.y) == [2.0, 1.0, 2.0 / 3]
    assert list(evaluation.x) == [3] and list(evaluation.y) == [1.1]
    assert train.line.dash == "solid" and evaluation.line.dash == "dash"
    assert train.line.color == evaluation.line.color  # a curve and its eval twin share a colour
    assert fig.layout.title.text == "loss"


def test_dpo_run_charts_keep_trl_names():
    figs = charts.run_charts(dpo_metrics(), "dpo")
    shown = {fig.layout.title.text: fig for fig in figs if fig is not None}
    assert names(shown["loss"]) == ["loss", "eval_loss"]
    assert names(shown["learning rate"]) == ["learning_rate"]
    rewards = shown["rewards (chosen vs rejected)"]
    assert names(rewards) == ["rewards/chosen", "eval_rewards/chosen", "rewards/rejected", "eval_rewards/rejected"]
    assert rewards.data[0].line.color == charts.FIXED_COLOURS["chosen"]
    assert rewards.data[2].line.color == charts.FIXED_COLOURS["rejected"]
    assert [t.line.dash for t in rewards.data] == ["solid", "dash", "solid", "dash"]
    assert names(shown["rewards/accuracies"]) == ["rewards/accuracies", "eval_rewards/accuracies"]
    assert list(shown["rewards/accuracies"].data[0].y) == [0.75, 1.0]
    assert names(shown["rewards/margins"]) == ["rewards/margins", "eval_rewards/margins"]
    assert names(shown["log-probabilities (chosen vs rejected)"]) == [
        "logps/chosen", "eval_logps/chosen", "logps/rejected", "eval_logps/rejected"]


def test_sft_run_charts_hide_preference_charts():
    figs = charts.run_charts(sft_metrics(), "sft")
    assert len(figs) == charts.CHART_SLOTS
    assert visible_titles(figs) == ["loss", "learning rate"]


def visible_titles(figs) -> list[str]:
    return [fig.layout.title.text for fig in figs if fig is not None]


def by_title(figs, title):
    return next(fig for fig in figs if fig is not None and fig.layout.title.text == title)


def test_each_stage_shows_its_own_charts():
    rm = [{"step": 1, "loss": 0.6, "learning_rate": 1e-4, "accuracy": 0.75, "margin": 0.2,
           "min_reward": -1.0, "mean_reward": 0.0, "max_reward": 1.0}, {"step": 1, "eval_accuracy": 0.8}]
    figs = charts.run_charts(rm, "rm")
    assert visible_titles(figs) == ["loss", "learning rate", "accuracy (chosen scored above rejected)",
                                    "margin (chosen - rejected score)", "scores (min / mean / max)"]
    assert names(by_title(figs, "accuracy (chosen scored above rejected)")) == [
        "accuracy", "eval_accuracy"]
    ppo = [{"step": 0, "eval_objective/scores": 0.1, "eval_objective/kl": 0.0},
           {"step": 1, "loss": 0.1, "objective/scores": 0.2, "objective/kl": 0.5, "loss/policy_avg": 0.0,
            "loss/value_avg": 0.3, "policy/entropy_avg": 2.0, "policy/clipfrac_avg": 0.1,
            "completions/mean_length": 30.0, "learning_rate": 1e-5, "objective/kl_coef": 0.05}]
    figs = charts.run_charts(ppo, "ppo")
    score = by_title(figs, "reward-model score of the answers")
    assert names(score) == ["objective/scores", "eval_objective/scores"]  # held-out greedy answers dashed
    assert "KL to the reference (nats per answer)" in visible_titles(figs)
    # a DPO loss's own terms get a chart only when that loss logs them
    assert "terms of the loss" not in visible_titles(charts.run_charts(dpo_metrics(), "dpo"))
    dpop = [{**m, "dpop/penalty": 0.0} for m in dpo_metrics()]
    assert "terms of the loss" in visible_titles(charts.run_charts(dpop, "dpo"))


def test_empty_data_gives_a_waiting_figure():
    for fig in filter(None, charts.run_charts([], "dpo")):
        assert fig.data == ()
        assert annotation_texts(fig) == [charts.WAITING]
    # records without the metric (an SFT run on a rewards chart) are "waiting" too, not an error
    assert annotation_texts(charts.line_chart(sft_metrics(), ["rewards/chosen"], "r")) == [charts.WAITING]


def test_non_finite_and_non_numeric_values_are_skipped():
    records = [{"step": 1, "loss": 1.0}, {"step": 2, "loss": math.nan}, {"step": 3, "loss": math.inf},
               {"step": 4, "loss": "n/a"}, {"step": 5, "loss": True}, {"step": 6, "loss": 0.5}]
    assert charts.series(records, "loss") == ([1, 6], [1.0, 0.5])


def test_overlay_one_metric_from_several_runs():
    fig = charts.overlay_chart({"run-a": sft_metrics(), "run-b": dpo_metrics()}, "loss")
    assert names(fig) == ["run-a", "run-b"]
    assert fig.data[0].line.color != fig.data[1].line.color
    assert all(t.line.dash == "solid" for t in fig.data)
    evals = charts.overlay_chart({"run-a": sft_metrics(), "run-b": dpo_metrics()}, "eval_loss")
    assert names(evals) == ["run-a", "run-b"] and all(t.line.dash == "dash" for t in evals.data)


def test_overlay_without_points_says_so():
    fig = charts.overlay_chart({"run-a": sft_metrics()}, "rewards/margins")
    assert fig.data == () and "rewards/margins" in annotation_texts(fig)[0]
    assert annotation_texts(charts.overlay_chart({}, "")) == [charts.WAITING]


def test_metric_names_lists_train_then_eval_keys():
    found = charts.metric_names(dpo_metrics())
    assert found[:3] == ["loss", "learning_rate", "grad_norm"]
    assert "step" not in found and "epoch" not in found
    assert found.index("eval_loss") > found.index("memory_rss_mb")
    assert all(k.startswith("eval_") for k in found[found.index("eval_loss"):])
