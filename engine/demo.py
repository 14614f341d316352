"""The SFT -> DPO demo on SmolLM2-135M-Instruct and the SQL sample data (`workbench demo`).

Trains examples/sft_sql.yaml, then examples/dpo_sql.yaml from that SFT run, then answers the
held-out prompts of sql_dpo_eval with the base model, the SFT adapter and the DPO adapter and
measures how often each writes the preferred style (a commented SQL answer, seed 000's example).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.models.store import DEFAULT_MODEL
from engine.paths import REPO_ROOT, saves_root
from engine.runs.folder import read_metrics

REPO = REPO_ROOT


def has_sql_comment(answer: str) -> bool:
    """The task probe: the preferred answers open with an SQL comment line (`-- ...`) and then
    give the query. Requiring the query matters: an over-optimised policy can open with `--` and
    then repeat comment lines forever, which is the style's form without its substance."""
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    code = " ".join(line for line in lines if not line.startswith("--")).upper()
    return bool(lines) and lines[0].startswith("--") and "SELECT" in code and "FROM" in code


def is_formatted(answer: str) -> bool:
    """The other half of the preferred style: clauses on their own lines (FROM starts a line)."""
    return any(line.strip().upper().startswith("FROM") for line in answer.splitlines()[1:])


PROBES = {"comment_fraction": has_sql_comment, "formatted_fraction": is_formatted}


def held_out_prompts(limit: int | None = None) -> list[str]:
    from engine.data.rows import load_dataset_for_stage

    ds = load_dataset_for_stage("sql_dpo_eval", REPO / "data", preference=True)
    return [row["prompt"][-1]["content"] for row in ds][:limit]


def compare_styles(runs: dict[str, Path | None], prompts: list[str], max_new_tokens: int = 96) -> dict:
    """Greedy answers of each model to the same prompts, and the fraction in the preferred style."""
    from engine.inference.generate import generate, load_for_inference

    results = {}
    for label, run_dir in runs.items():
        start = time.time()
        lm, tokenizer = load_for_inference(DEFAULT_MODEL, run_dir)
        answers = generate(lm, tokenizer, prompts, max_new_tokens=max_new_tokens)
        results[label] = {name: sum(map(probe, answers)) / len(answers) for name, probe in PROBES.items()}
        results[label].update(answers=answers, seconds=round(time.time() - start, 1))
        print(f"  {label:5} {len(answers)} held-out answers: commented query {results[label]['comment_fraction']:.0%}, "
              f"multi-line formatted {results[label]['formatted_fraction']:.0%} ({results[label]['seconds']:.0f} s)")
    return results


def _minutes(status: dict) -> float:
    return round((status["ended"] - status["started"]) / 60, 1)


def main() -> int:
    from engine.cli import train_run
    from engine.models.store import fetch_default_model

    fetch_default_model()
    print("== 1/3 SFT: examples/sft_sql.yaml")
    sft_dir, sft = train_run(str(REPO / "examples/sft_sql.yaml"), [])
    if sft["state"] != "completed":
        return 1
    print("== 2/3 DPO from the SFT run: examples/dpo_sql.yaml")
    dpo_dir, dpo = train_run(str(REPO / "examples/dpo_sql.yaml"), [f"init_from={sft_dir}"])
    if dpo["state"] != "completed":
        return 1
    print("== 3/3 held-out prompts: base vs SFT vs DPO")
    prompts = held_out_prompts()
    styles = compare_styles({"base": None, "sft": sft_dir, "dpo": dpo_dir}, prompts)
    dpo_eval = next(m for m in reversed(read_metrics(dpo_dir)) if "eval_rewards/accuracies" in m)
    summary = {
        "sft_run": str(sft_dir), "dpo_run": str(dpo_dir),
        "sft_minutes": _minutes(sft), "dpo_minutes": _minutes(dpo),
        "dpo_eval": {k: v for k, v in dpo_eval.items() if k.startswith("eval_")},
        **{name: {k: v[name] for k, v in styles.items()} for name in PROBES},
        "prompts": prompts, "answers": {k: v["answers"] for k, v in styles.items()},
    }
    out = saves_root() / "demo" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"\nSFT {summary['sft_minutes']} min, DPO {summary['dpo_minutes']} min; DPO eval "
          f"rewards/accuracies {dpo_eval['eval_rewards/accuracies']:.2f}, "
          f"rewards/margins {dpo_eval['eval_rewards/margins']:.2f}")
    for name, what in (("comment_fraction", "a SQL comment then the query"), ("formatted_fraction", "multi-line formatting")):
        print(f"held-out answers with {what}: " + ", ".join(f"{k} {v[name]:.0%}" for k, v in styles.items()))
    print(f"\nExample, {prompts[0]!r}\n-- SFT --\n{styles['sft']['answers'][0]}\n-- DPO --\n"
          f"{styles['dpo']['answers'][0]}\n\nAll answers: {out}")
    return 0
