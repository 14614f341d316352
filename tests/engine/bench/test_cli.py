"""`workbench bench` end to end on the tiny model: each task's JSON line, from real worker processes.

One TRL setting each (float32; DPO with its reference precompute, so the precompute clock is exercised)
keeps these to two measured runs a task; engine.bench.harness's choice among TRL's settings is
tested in test_harness.py without training.
"""

from __future__ import annotations

import json

import pytest

from engine.bench.report import WARM
from engine.cli import main
from engine.runs.folder import list_runs

HEADLINE = ("task", "workbench", "trl", "speedup", "memory_ratio", "loss_delta")


def bench(capsys, *argv: str) -> dict:
    """Run the command; its output's last line parsed (it must be the JSON line)."""
    assert main(["bench", *argv, "--repeat", "1", "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert list(summary)[:len(HEADLINE)] == list(HEADLINE)
    return summary


def all_runs(summary: dict) -> list[dict]:
    return [run for system in summary["systems"].values() for run in system["runs"]]


def test_dpo_bench_trains_both_systems_on_identical_tokens(tiny_model, capsys):
    runs_before = list_runs()
    summary = bench(capsys, "dpo", "--model", str(tiny_model), "--steps", "2", "--trl-dtype", "float32",
                    "--trl-precompute", "on")
    assert summary["task"] == "dpo" and summary["workbench"] > 0 and summary["trl"] > 0
    assert summary["speedup"] > 0 and summary["memory_ratio"] > 0 and summary["loss_delta"] is not None
    assert set(summary["systems"]) == {"workbench", WARM, "trl/float32+precompute"}
    runs = all_runs(summary)
    # the contract: the same real (non-padding) tokens in every run of both systems
    assert len({run["real_tokens"] for run in runs}) == 1 and runs[0]["real_tokens"] > 0
    assert summary["tokens_identical"] and summary["real_tokens"] == runs[0]["real_tokens"]
    for run in runs:
        assert run["steps"] == 2 and isinstance(run["loss"], float) and len(run["losses"]) == 2
        assert run["rewards/accuracies"] is not None and run["peak_rss_mb"] > 0
        assert run["gradient_checkpointing"] is False
    assert summary["systems"]["trl/float32+precompute"]["runs"][0]["reference_seconds"] > 0
    # each workbench run scores its reference first, timed; the warm one reads the first run's cache
    cold, warm = (summary["systems"][name]["runs"][0] for name in ("workbench", WARM))
    assert cold["reference_seconds"] > 0 and warm["reference_seconds"] > 0
    # equal up to float32 rounding: the warm process scored its cached reference in a run of its own, and on
    # some CPUs (an AMD EPYC with AVX-512) a process's scores differ from another's in the last bit
    assert warm["losses"] == pytest.approx(cold["losses"], rel=1e-6, abs=1e-6)
    assert summary["speedup_warm_reference"] > 0
    assert summary["machine"]["cpu"] and summary["machine"]["torch_threads"] >= 1
    assert list_runs() == runs_before  # the workbench's run folder lived in the bench's temporary saves


def test_sft_bench_trains_both_systems_on_identical_tokens(tiny_model, capsys, tmp_path):
    out = tmp_path / "results" / "sft.json"
    summary = bench(capsys, "sft", "--model", str(tiny_model), "--steps", "2", "--trl-dtype", "float32",
                    "--out", str(out))
    assert summary["task"] == "sft" and summary["workbench"] > 0 and summary["trl"] > 0
    assert set(summary["systems"]) == {"workbench", "trl/float32"}
    runs = all_runs(summary)
    assert len({run["real_tokens"] for run in runs}) == 1 and summary["tokens_identical"]
    assert all(isinstance(run["loss"], float) for run in runs) and summary["loss_delta"] is not None
    assert json.loads(out.read_text(encoding="utf-8"))["speedup"] == summary["speedup"]


def test_chat_bench_compares_columns_with_plain_generate(tiny_model, capsys):
    summary = bench(capsys, "chat", "--model", str(tiny_model), "--steps", "8")
    assert summary["task"] == "chat" and summary["workbench"] > 0 and summary["trl"] > 0
    assert set(summary["columns"]) == {"2", "4"} and summary["loss_delta"] is None
    assert summary["speedup"] == min(c["ratio"] for c in summary["columns"].values())
    side_by_side = summary["systems"]["workbench"]["runs"][0]["columns"]
    assert [len(side_by_side[n]["tokens"]) for n in ("2", "4")] == [2, 4]
    assert summary["systems"]["generate"]["runs"][0]["columns"]["4"]["tokens"] == [8] * 4
