"""The plan of one `workbench bench` invocation: which systems, in which order, each run in a fresh
worker process, all under one temporary folder that is removed afterwards (nothing lands in saves/).

Training: the workbench's stage and TRL's trainer at each setting that could be TRL's best here
(its dtypes worth trying on this machine, and for DPO ``precompute_ref_log_probs`` off and on); the
fastest by median tokens/s is TRL's figure. Chat: the side-by-side path and plain ``generate``.
The systems run in alternating order, ABBA, so that drift on a shared machine falls on both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from engine.bench.machine import describe, fast_cpu_bf16
from engine.bench.recipe import TASKS, Recipe
from engine.bench.report import WARM, summarize
from engine.paths import REPO_ROOT

LOG_TAIL = 3000  # characters of a failed worker's log shown in the error


class BenchError(RuntimeError):
    """A worker failed; the message holds the end of its log."""


def make_recipe(task: str, model: str, steps: int | None = None, template: str = "model") -> Recipe:
    from engine.models.store import resolve_model

    defaults = TASKS[task]
    return Recipe(task=task, model=str(resolve_model(model).resolve()), dataset_dir=str(REPO_ROOT / "data"),
                  dataset=defaults["dataset"], steps=steps or defaults["steps"], batch_size=defaults["batch_size"],
                  template=template)


def gpu_dtype() -> str | None:
    """On a CUDA GPU the one dtype worth trying (bf16 where the GPU has it); None on a CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"


def this_machine() -> dict:
    return {**describe(), "gpu_dtype": gpu_dtype()}


def trl_dtypes(choice: str, machine: dict) -> list[str]:
    """The dtypes TRL could be fastest in here: bf16 on a GPU that has it; on a CPU float32, and bf16
    too where the CPU has bf16 instructions (without them bf16 is emulated and far slower)."""
    if choice != "auto":
        return [choice]
    if machine.get("gpu_dtype"):
        return [machine["gpu_dtype"]]
    return ["float32", "bfloat16"] if fast_cpu_bf16(machine) else ["float32"]


def precompute_choices(task: str, choice: str) -> list[bool]:
    if task != "dpo" or choice == "off":
        return [False]
    return [True] if choice == "on" else [False, True]


def systems(task: str, dtype: str = "auto", trl_dtype: str = "auto", trl_precompute: str = "auto",
            machine: dict | None = None, runs: list[str] = ()) -> list[dict]:
    """The worker specs of one round (without the recipe), the workbench first."""
    if task == "chat":
        return [{"name": "workbench", "system": "workbench", "runs": list(runs)},
                {"name": "generate", "system": "generate"}]
    specs = [{"name": "workbench", "system": "workbench", "dtype": dtype}]
    if task == "dpo":  # a second run on the same reference and tokens: its reference log-probs are cached
        specs.append({"name": WARM, "system": "workbench", "dtype": dtype, "warm_reference": True})
    for trl_type in trl_dtypes(trl_dtype, machine or this_machine()):
        for precompute in precompute_choices(task, trl_precompute):
            name = f"trl/{trl_type}" + ("+precompute" if precompute else "")
            specs.append({"name": name, "system": "trl", "dtype": trl_type, "precompute": precompute})
    return specs


def schedule(specs: list[dict], repeat: int) -> list[dict]:
    """``repeat`` rounds, every other one in reverse order (ABBA): no system always goes first."""
    order = []
    for round_ in range(repeat):
        order += specs if round_ % 2 == 0 else specs[::-1]
    return order


def worker_env(workdir: Path, folder: Path, task: str) -> dict:
    """A training run gets a saves folder of its own, so each starts with a cold reference cache;
    chat runs share the one holding the throwaway adapters."""
    saves = workdir / "saves" if task == "chat" else folder / "saves"
    return {**os.environ, "WORKBENCH_SAVES": str(saves), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(folder / "datasets-cache"), "TQDM_DISABLE": "1"}


def run_worker(spec: dict, workdir: Path, index: int) -> dict:
    """One measured run in a fresh process (its own folder, datasets cache and log)."""
    folder = workdir / f"{index:02d}-{spec['name'].replace('/', '-').replace('+', '-')}"
    folder.mkdir(parents=True)
    spec_file, result_file, log_file = folder / "spec.json", folder / "result.json", folder / "worker.log"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    with open(log_file, "w", encoding="utf-8") as log:
        command = [sys.executable, "-m", "engine.bench.worker", str(spec_file), str(result_file)]
        code = subprocess.run(command, cwd=folder, env=worker_env(workdir, folder, spec["task"]), stdout=log,
                              stderr=subprocess.STDOUT).returncode
    if code != 0 or not result_file.exists():
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]
        raise BenchError(f"the {spec['name']} run failed (exit status {code}); the end of its log:\n{tail}")
    return json.loads(result_file.read_text(encoding="utf-8"))


def progress_line(index: int, total: int, result: dict, seconds: float) -> str:
    if "columns" in result:
        rates = ", ".join(f"{n} columns {c['tokens_per_second']} tokens/s" for n, c in result["columns"].items())
        return f"[{index}/{total}] {result['system']}: {rates} ({seconds:.0f} s)"
    return (f"[{index}/{total}] {result['system']}: {result['tokens_per_second']} tokens/s, "
            f"{result['s_per_step']} s/step, loss {result['loss']} ({seconds:.0f} s)")


def run_bench(task: str, model: str, steps: int | None = None, repeat: int = 2, template: str = "model",
              dtype: str = "auto", trl_dtype: str = "auto", trl_precompute: str = "auto", runs: list[str] = (),
              progress: Callable[[str], None] = lambda line: None) -> dict:
    """Measure every system ``repeat`` times, alternated, and summarise (engine.bench.report)."""
    if (steps is not None and steps < 1) or repeat < 1:
        raise ValueError("--steps and --repeat must be at least 1")
    machine = this_machine()
    recipe = make_recipe(task, model, steps, template)
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        workdir = Path(tmp)
        if task == "chat":
            runs = list(runs) + throwaway(recipe, 3 - len(runs), workdir)
        specs = systems(task, dtype, trl_dtype, trl_precompute, machine, runs)
        planned = schedule(specs, repeat)
        results: dict[str, list[dict]] = {spec["name"]: [] for spec in specs}
        for index, spec in enumerate(planned, 1):
            start = time.perf_counter()
            result = run_worker({**spec, "task": task, "recipe": recipe.to_dict()}, workdir, index)
            results[spec["name"]].append(result)
            progress(progress_line(index, len(planned), result, time.perf_counter() - start))
    return summarize(recipe, machine, specs, results)


def throwaway(recipe: Recipe, count: int, workdir: Path) -> list[str]:
    from engine.bench.chat import throwaway_runs

    return throwaway_runs(recipe.model, count, workdir / "saves" / "runs") if count > 0 else []
