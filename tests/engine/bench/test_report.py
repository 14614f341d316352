"""From measured runs to the bench's answer: medians, TRL's best setting, the ratios and the table."""

from __future__ import annotations

from engine.bench.recipe import Recipe
from engine.bench.report import summarize, text

MACHINE = {"cpu": "Test CPU", "cores": 2, "bf16_flags": [], "avx512": False, "python": "3.11",
           "platform": "test", "versions": {"torch": "2", "transformers": "5", "trl": "1"}}


def training_run(name: str, tokens_per_second: float, loss: float, rss: float, tokens: int = 1000) -> dict:
    return {"system": name, "steps": 2, "real_tokens": tokens, "padded_tokens": 1400, "train_seconds": 1.0,
            "reference_seconds": 0.0, "tokens_per_second": tokens_per_second, "s_per_step": 0.5,
            "step_seconds": [0.5, 0.5], "gradient_checkpointing": False, "loss": loss, "losses": [0.69, loss],
            "rewards/accuracies": 0.5, "rewards/margins": 0.1, "peak_rss_mb": rss, "gpu_peak_mb": None,
            "rss_end_mb": rss, "build_seconds": 1.0, "weights_dtype": "float32" if "bfloat16" not in name
            else "bfloat16", "torch_threads": 2, "device": "cpu"}


SPECS = [{"name": "workbench", "system": "workbench", "dtype": "auto"},
         {"name": "trl/float32", "system": "trl", "dtype": "float32", "precompute": False},
         {"name": "trl/bfloat16", "system": "trl", "dtype": "bfloat16", "precompute": False}]


def test_training_summary_compares_with_trls_fastest_setting():
    results = {"workbench": [training_run("workbench", 100, 0.52, 500), training_run("workbench", 120, 0.52, 520)],
               "trl/float32": [training_run("trl/float32", 90, 0.52, 400)] * 2,
               "trl/bfloat16": [training_run("trl/bfloat16", 200, 0.64, 250)] * 2}
    summary = summarize(Recipe("dpo", "/m/SmolLM2", "/data", "sql_dpo", steps=2), MACHINE, SPECS, results)
    assert summary["trl_best"] == "trl/bfloat16"
    assert (summary["workbench"], summary["trl"], summary["speedup"]) == (110, 200, 0.55)
    assert summary["memory_ratio"] == 2.04 and summary["loss_delta"] == 0.12
    assert summary["loss_delta_same_dtype"] == 0.0  # against trl/float32, the workbench's dtype
    assert summary["tokens_identical"] and summary["real_tokens"] == 1000
    table = text(summary)
    assert "110.0 (100.0-120.0)" in table and "TRL's best here: trl/bfloat16" in table and "Test CPU" in table


def test_different_tokens_void_the_comparison():
    results = {"workbench": [training_run("workbench", 100, 0.5, 500, tokens=1000)],
               "trl/float32": [training_run("trl/float32", 90, 0.5, 400, tokens=990)],
               "trl/bfloat16": [training_run("trl/bfloat16", 80, 0.6, 300, tokens=1000)]}
    summary = summarize(Recipe("sft", "/m/x", "/data", "sql_sft", steps=2), MACHINE, SPECS, results)
    assert not summary["tokens_identical"] and summary["real_tokens"] == [990, 1000]
    assert "NOT IDENTICAL" in text(summary)


def chat_run(name: str, two: float, four: float) -> dict:
    first = 0.1 if name == "workbench" else None
    columns = {str(n): {"columns": n, "tokens": [8] * n, "seconds": 1.0, "tokens_per_second": rate,
                        "first_token_seconds": first} for n, rate in ((2, two), (4, four))}
    return {"system": name, "columns": columns, "peak_rss_mb": 300.0, "gpu_peak_mb": None, "torch_threads": 2,
            "device": "cpu"}


def test_chat_speedup_is_the_smaller_ratio_of_the_column_counts():
    specs = [{"name": "workbench", "system": "workbench", "runs": []}, {"name": "generate", "system": "generate"}]
    results = {"workbench": [chat_run("workbench", 12.0, 10.0)], "generate": [chat_run("generate", 24.0, 15.0)]}
    summary = summarize(Recipe("chat", "/m/x", "/data", steps=8), MACHINE, specs, results)
    assert summary["columns"]["2"]["ratio"] == 0.5 and summary["columns"]["4"]["ratio"] == 0.667
    assert (summary["workbench"], summary["trl"], summary["speedup"]) == (12.0, 24.0, 0.5)
    assert summary["memory_ratio"] == 1.0 and summary["loss_delta"] is None
    assert "chat / generate: speedup 0.5x" in text(summary)
