"""The SFT -> DPO demo on SmolLM2-135M-Instruct and the SQL sample data (`workbench demo`, `make demo`).

Trains examples/sft_sql.yaml, then examples/dpo_sql.yaml from that SFT run, then evaluates the DPO
run as the Evaluate tab would: its held-out preference accuracy, and the greedy answers of the base
model, the SFT adapter and the DPO adapter to the 50 held-out prompts of sql_dpo_eval, with the
fraction in the preferred style (a commented, formatted SQL answer, seed 000's example). The
evaluation is saved with the DPO run, so the web UI shows it too.
"""

from __future__ import annotations

import dataclasses

from engine.config import EvalConfig, load_yaml
from engine.paths import REPO_ROOT
from engine.runs.status import State

EVALUATION = EvalConfig(dataset="sql_dpo_eval", prompts=50, reward_run="none")


def main() -> int:
    from engine.models.fetch import fetch_default_model
    from engine.runs.console import job_in_terminal, train_in_terminal

    fetch_default_model()
    print("== 1/3 SFT: examples/sft_sql.yaml")
    sft, status = train_in_terminal(load_yaml(REPO_ROOT / "examples/sft_sql.yaml"))
    if status.state != State.COMPLETED:
        return 1
    print("== 2/3 DPO from the SFT run: examples/dpo_sql.yaml")
    dpo, status = train_in_terminal(load_yaml(REPO_ROOT / "examples/dpo_sql.yaml", [f"init_from={sft}"]))
    if status.state != State.COMPLETED:
        return 1
    print("== 3/3 held-out prompts: base vs SFT vs DPO")
    job, status = job_in_terminal(dpo, "eval", dataclasses.asdict(EVALUATION))
    if status.state != State.COMPLETED:
        return 1
    answers = job.result()["generation"]
    print(f"\nExample, {answers['prompts'][0]!r}\n-- SFT --\n{answers['models']['sft']['answers'][0]}\n"
          f"-- DPO --\n{answers['models']['dpo']['answers'][0]}\n\nAll answers: {job.result_file}")
    return 0
