"""`workbench bench {dpo,sft,chat}` (engine.cli): the workbench against TRL on identical tokens.

Prints progress to stderr, then a table; ``--json`` ends the output with one JSON line, ``--out``
writes the same object to a file. Exit status 1 when the systems did not train on the same tokens
(the comparison would be void), 2 when a run failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.bench.harness import BenchError, run_bench
from engine.bench.recipe import TASKS
from engine.models.store import DEFAULT_MODEL


def chat_runs(value: str | None) -> list[str]:
    """--runs: up to three run folders or names, as absolute folders (workers use another saves folder)."""
    from engine.runs.folder import resolve_run

    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    if len(names) > 3:
        raise ValueError(f"--runs: at most 3 runs (the base is the fourth column), got {len(names)}")
    return [str(resolve_run(name).path.resolve()) for name in names]


def cmd_bench(args) -> int:
    try:
        summary = run_bench(args.task, args.model, steps=args.steps, repeat=args.repeat, template=args.template,
                            dtype=args.dtype, trl_dtype=args.trl_dtype, trl_precompute=args.trl_precompute,
                            runs=chat_runs(args.runs), progress=lambda line: print(line, file=sys.stderr, flush=True))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from engine.bench.report import text

    print(text(summary))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(summary))
    return 0 if summary.get("tokens_identical", True) else 1


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="measure the workbench against TRL (training) or plain generate (chat) "
                                     "on identical tokens")
    b.add_argument("task", choices=list(TASKS), help="dpo (sql_dpo, batch 4), sft (sql_sft, batch 8) or chat")
    b.add_argument("--model", default=DEFAULT_MODEL, help="model name or folder (default: %(default)s)")
    defaults = ", ".join(f"{task} {d['steps']}" for task, d in TASKS.items())
    b.add_argument("--steps", type=int, help=f"optimiser steps per run; chat: new tokens per answer "
                                             f"(default: {defaults})")
    b.add_argument("--repeat", type=int, default=2, help="runs per system, alternated (default: %(default)s)")
    b.add_argument("--json", action="store_true", help="end with one line of JSON: the figures and every run")
    b.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    b.add_argument("--template", default="model", help="chat template, like model.template (default: %(default)s)")
    b.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="the workbench's model.dtype (default: %(default)s, what a run would pick)")
    b.add_argument("--trl-dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="TRL's dtype; auto tries every dtype that can be fastest here and keeps the fastest")
    b.add_argument("--trl-precompute", default="auto", choices=["auto", "on", "off"],
                   help="dpo: TRL's precompute_ref_log_probs; auto tries both and keeps the faster "
                        "(the precompute counts in its time)")
    b.add_argument("--runs", help="chat: up to 3 LoRA runs (names or folders) beside the base; missing ones "
                                  "are throwaway random adapters")
    b.set_defaults(func=cmd_bench)
