"""From the runs of a benchmark to its answer: medians per system, TRL's best setting, the ratios,
a table for people and one JSON line for scripts.

The JSON line begins with the figures the issue asks for: ``task``, ``workbench`` and ``trl`` (median
real tokens/s; chat: tokens/s per column and plain ``generate``'s per row), ``speedup``
(workbench/trl; chat: the smaller ratio of the column counts), ``memory_ratio`` (workbench/trl peak
RSS; GPU memory on a GPU) and ``loss_delta`` (|final loss difference|); every run's details follow.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from engine.bench.machine import one_line
from engine.bench.recipe import CHAT_COLUMNS, Recipe

WARM = "workbench/warm-reference"  # DPO: the workbench again, its reference log-probs already cached

MEDIAN_KEYS = ("tokens_per_second", "s_per_step", "peak_rss_mb", "gpu_peak_mb", "loss", "rewards/accuracies",
               "rewards/margins", "reference_seconds", "train_seconds", "build_seconds")


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def memory_key(result: dict) -> str:
    """What memory means here: torch's peak GPU allocation on a GPU, else the process's peak RSS."""
    return "gpu_peak_mb" if result.get("gpu_peak_mb") is not None else "peak_rss_mb"


def summarize(recipe: Recipe, machine: dict, specs: list[dict], results: dict[str, list[dict]]) -> dict:
    first = results["workbench"][0]
    machine = {**machine, "torch_threads": first.get("torch_threads"), "device": first.get("device")}
    systems = {spec["name"]: {**{k: v for k, v in spec.items() if k != "name"}, "runs": results[spec["name"]]}
               for spec in specs}
    if recipe.task == "chat":
        return chat_summary(recipe, machine, systems)
    return training_summary(recipe, machine, systems)


def training_summary(recipe: Recipe, machine: dict, systems: dict) -> dict:
    for system in systems.values():
        system["median"] = {key: median(run.get(key) for run in system["runs"]) for key in MEDIAN_KEYS}
    trl_names = [name for name in systems if name.startswith("trl")]
    best = max(trl_names, key=lambda name: systems[name]["median"]["tokens_per_second"] or 0.0)
    ours, theirs = systems["workbench"]["median"], systems[best]["median"]
    memory = memory_key(systems["workbench"]["runs"][0])
    tokens = sorted({run["real_tokens"] for system in systems.values() for run in system["runs"]})
    # the same weights' dtype and no precompute: the like-for-like loss (bf16 changes the loss)
    same = f"trl/{systems['workbench']['runs'][0].get('weights_dtype')}"
    return {
        "task": recipe.task,
        "workbench": ours["tokens_per_second"],
        "trl": theirs["tokens_per_second"],
        "speedup": ratio(ours["tokens_per_second"], theirs["tokens_per_second"]),
        "memory_ratio": ratio(ours[memory], theirs[memory]),
        "loss_delta": loss_delta(ours, theirs),
        "trl_best": best,
        "speedup_warm_reference": (ratio(systems[WARM]["median"]["tokens_per_second"], theirs["tokens_per_second"])
                                   if WARM in systems else None),
        "loss_delta_same_dtype": loss_delta(ours, systems[same]["median"]) if same in systems else None,
        "tokens_identical": len(tokens) == 1,
        "real_tokens": tokens[0] if len(tokens) == 1 else tokens,
        "memory": memory,
        "settings": recipe.to_dict(),
        "machine": machine,
        "systems": systems,
    }


def loss_delta(ours: dict, theirs: dict) -> float | None:
    if ours["loss"] is None or theirs["loss"] is None:
        return None
    return round(abs(ours["loss"] - theirs["loss"]), 4)


def chat_summary(recipe: Recipe, machine: dict, systems: dict) -> dict:
    columns = {}
    for n in CHAT_COLUMNS:
        rates = {name: median(run["columns"][str(n)]["tokens_per_second"] for run in system["runs"])
                 for name, system in systems.items()}
        first = median(run["columns"][str(n)]["first_token_seconds"] for run in systems["workbench"]["runs"])
        columns[str(n)] = {"workbench": rates["workbench"], "generate": rates["generate"],
                           "ratio": ratio(rates["workbench"], rates["generate"]), "first_token_seconds": first}
    worst = min(columns.values(), key=lambda c: c["ratio"] if c["ratio"] is not None else float("inf"))
    for system in systems.values():
        system["median"] = {key: median(run.get(key) for run in system["runs"])
                            for key in ("peak_rss_mb", "gpu_peak_mb")}
    memory = memory_key(systems["workbench"]["runs"][0])
    return {
        "task": "chat",
        "workbench": worst["workbench"],
        "trl": worst["generate"],
        "speedup": worst["ratio"],
        "memory_ratio": ratio(systems["workbench"]["median"][memory], systems["generate"]["median"][memory]),
        "loss_delta": None,
        "baseline": "model.generate",
        "columns": columns,
        "memory": memory,
        "settings": recipe.to_dict(),
        "machine": machine,
        "systems": systems,
    }


# ---- the table -----------------------------------------------------------------------------------

def spread(values: list, digits: int) -> str:
    """The median, and the range when there are several runs: noise shows."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mid = f"{statistics.median(values):.{digits}f}"
    return mid if len(values) == 1 else f"{mid} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def heading(summary: dict) -> list[str]:
    s = summary["settings"]
    runs = len(summary["systems"]["workbench"]["runs"])
    if s["task"] == "chat":
        what = f"{s['steps']} new tokens per answer, greedy, base + 1 and base + 3 LoRA runs"
    else:
        what = (f"{s['dataset']}, {s['steps']} steps of {s['batch_size']}, cutoff {s['cutoff_len']}, lr "
                f"{s['learning_rate']}, LoRA r{s['lora_rank']}/alpha{s['lora_alpha']} {s['lora_target']}, "
                f"template {s['template']}, seed {s['seed']}")
    return [f"workbench bench {s['task']}: {Path(s['model']).name}, {what}; {runs} run(s) per system, alternated",
            f"machine: {one_line(summary['machine'])}"]


def table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def training_lines(summary: dict) -> list[str]:
    memory = "GPU peak MB" if summary["memory"] == "gpu_peak_mb" else "peak RSS MB"
    rows = [["system", "weights", "tokens/s", "s/step", memory, "precompute s", "final loss", "accuracy"]]
    for name, system in summary["systems"].items():
        runs = system["runs"]
        column = lambda key: [run.get(key) for run in runs]  # noqa: E731
        rows.append([name, runs[0].get("weights_dtype", "?"), spread(column("tokens_per_second"), 1),
                     spread(column("s_per_step"), 3), spread(column(summary["memory"]), 0),
                     spread(column("reference_seconds"), 1) if any(column("reference_seconds")) else "-",
                     spread(column("loss"), 4), spread(column("rewards/accuracies"), 2)])
    workbench = summary["systems"]["workbench"]["runs"][0]
    padding = 1 - workbench["real_tokens"] / workbench["padded_tokens"] if workbench["padded_tokens"] else 0.0
    tokens = (f"real tokens per run: {summary['real_tokens']} in every run of every system "
              f"({padding:.0%} of the workbench's padded positions are padding)" if summary["tokens_identical"]
              else f"NOT IDENTICAL: real tokens per run differ between runs: {summary['real_tokens']}")
    same = summary["loss_delta_same_dtype"]
    return [*table(rows), tokens,
            f"workbench / trl (TRL's best here: {summary['trl_best']}): speedup {summary['speedup']}x, "
            f"memory {summary['memory_ratio']}x, |loss difference| {summary['loss_delta']}"
            + (f" ({same} against TRL in the workbench's dtype)" if same is not None else "")
            + (f"; with the reference log-probs cached: {warm}x" if (warm := summary.get("speedup_warm_reference"))
               else "")]


def chat_lines(summary: dict) -> list[str]:
    rows = [["columns", "chat tokens/s per column", "generate tokens/s per row", "ratio", "chat first token s"]]
    for n, c in summary["columns"].items():
        chat = [run["columns"][n]["tokens_per_second"] for run in summary["systems"]["workbench"]["runs"]]
        plain = [run["columns"][n]["tokens_per_second"] for run in summary["systems"]["generate"]["runs"]]
        first = [run["columns"][n]["first_token_seconds"] for run in summary["systems"]["workbench"]["runs"]]
        rows.append([n, spread(chat, 1), spread(plain, 1), str(c["ratio"]), spread(first, 2)])
    lengths = [run["columns"][n]["tokens"] for run in summary["systems"]["workbench"]["runs"]
               for n in summary["columns"]]
    return [*table(rows), f"chat answers' lengths (tokens per column): {lengths}",
            f"chat / generate: speedup {summary['speedup']}x (the smaller ratio), memory {summary['memory_ratio']}x"]


def text(summary: dict) -> str:
    body = chat_lines(summary) if summary["task"] == "chat" else training_lines(summary)
    return "\n".join([*heading(summary), "", *body])
