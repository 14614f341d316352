"""QLoRA measured: peak memory and speed of a DPO run on SmolLM2-135M-Instruct with a full-precision
LoRA base, an 8-bit base and a 4-bit (nf4, double-quantised) base, on this machine.

    .venv/bin/python bench/qlora.py [--steps 12] [--repeat 2] [--threads 1] [--out FILE]

Each run is the path a user takes: ``workbench train CONFIG --set model.finetuning_type=KIND`` in a
fresh process, with WORKBENCH_SAVES pointing at a new scratch saves folder per run (its ``models``
a link to the repository's saves/models, so SmolLM2 is found; nothing is written under saves/, and
every run scores its DPO reference cold). The kinds alternate (lora, 8bit, 4bit, lora, ...).

Per run: peak RSS of the whole training (``os.wait4`` on the ``workbench train`` process gives
ru_maxrss, the largest of it and its reaped engine child; the engine child's VmHWM is also polled
from /proc), tokens/s (the median of metrics.jsonl ``tokens_per_second`` over the steps after the
first two), wall time, and the final loss / rewards. Per kind, in a fresh process: the base model's
weight memory as the engine loads it (``get_memory_footprint``), split into the quantised linear
layers and the rest (embeddings, norms), since the process RSS carries several hundred MB of
torch/python that hides the weights of a 135M model.

Writes bench/results/2026-11-26-qlora-dpo-<cpu>.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KINDS = ("lora", "qlora-8bit", "qlora-4bit")
MODEL = "SmolLM2-135M-Instruct"

CONFIG = """\
stage: dpo
name: qlora-bench
model:
  name_or_path: {model}
  finetuning_type: lora
  dtype: {dtype}
data:
  dataset: sql_dpo
  max_samples: {samples}
  cutoff_len: 256
training:
  max_steps: {steps}
  learning_rate: 2.0e-4
  per_device_train_batch_size: 4
  gradient_accumulation_steps: 1
  logging_steps: 1
  save_minutes: 0
samples:
  count: 0
dpo:
  beta: 0.1
  loss_type: sigmoid
"""

# the footprint of the base weights, loaded exactly as the engine's training_model loads them
FOOTPRINT = r"""
import json, sys
import torch
from engine.config import from_dict
from engine.models.loader import causal_lm, compute_dtype, quantization
from engine.models.store import resolve_model

kind, model, dtype = sys.argv[1:4]
cfg = from_dict({"stage": "dpo", "model": {"name_or_path": model, "finetuning_type": kind, "dtype": dtype}})
lm = causal_lm(resolve_model(model), compute_dtype(dtype), quantization_config=quantization(cfg))
quantised = 0
for module in lm.modules():
    name = type(module).__name__
    if name in ("Linear4bit", "Linear8bitLt"):
        quantised += sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))
        state = getattr(module.weight, "quant_state", None)  # 4-bit absmax / double-quant tables
        if state is not None:
            quantised += sum(t.numel() * t.element_size() for t in state.as_dict(packed=True).values()
                             if isinstance(t, torch.Tensor))
linear = sum(p.numel() * p.element_size() for n, m in lm.named_modules() if isinstance(m, torch.nn.Linear)
             and n != "lm_head" for p in m.parameters())
with open("/proc/self/status") as f:
    rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
print(json.dumps({"footprint_mb": lm.get_memory_footprint() / 2**20, "linear_layers_mb": linear / 2**20,
                  "quantised_layers_mb": quantised / 2**20,
                  "weight_dtypes": sorted({str(p.dtype) for p in lm.parameters()}),
                  "rss_after_load_mb": rss / 1024,
                  "parameters": sum(p.numel() for p in lm.parameters())}))
"""


def machine() -> dict:
    info = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        info["cpu"] = fields.get("Model name", "").strip()
        flags = set(fields.get("Flags", "").split())
        info["cpu_flags"] = {f: f in flags for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16",
                                                    "amx_int8", "amx_tile")}
    except (OSError, subprocess.CalledProcessError):
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    with open("/proc/meminfo") as f:
        info["memory_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    versions = subprocess.run(
        [sys.executable, "-c", "import json, torch, transformers, peft, trl, bitsandbytes as b; print(json.dumps("
         "{m.__name__: m.__version__ for m in (torch, transformers, peft, trl, b)} | "
         "{'cuda': torch.cuda.is_available()}))"],
        capture_output=True, text=True, cwd=REPO)
    info.update(json.loads(versions.stdout.strip().splitlines()[-1]) if versions.returncode == 0 else {})
    info["python"] = platform.python_version()
    return info


def machine_slug(info: dict) -> str:
    cpu = info.get("cpu", "cpu").lower()
    cpu = re.sub(r"\(.*?\)|processor|\d+-core", "", cpu)
    slug = "-".join(w for w in re.split(r"[^a-z0-9]+", cpu) if w)
    flags = info.get("cpu_flags", {})
    slug += "-amx" if flags.get("amx_bf16") else "-avx512bf16" if flags.get("avx512_bf16") else ""
    return f"{slug}-{info.get('cores')}cores"


def vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def engine_pids(pid: int) -> list[int]:
    """Descendants of ``pid`` (the engine is a child of `workbench train`)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(c) for c in children]
        todo += [int(c) for c in children]
    return found


def train_once(kind: str, config: Path, env: dict, log: Path) -> dict:
    """One `workbench train` in a fresh scratch saves folder; its numbers."""
    scratch = Path(tempfile.mkdtemp(prefix="qlora-bench-"))
    (scratch / "saves").mkdir()
    (scratch / "saves" / "models").symlink_to(REPO / "saves" / "models")
    env = {**env, "WORKBENCH_SAVES": str(scratch / "saves")}
    command = [str(REPO / ".venv" / "bin" / "workbench"), "train", str(config),
               "--set", f"model.finetuning_type={kind}"]
    hwm: dict[int, float] = {}
    load_before = os.getloadavg()[0]  # other work on the machine disturbs the numbers: recorded with them
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def poll() -> None:  # the engine child's VmHWM, read while it lives
            while not done.is_set():
                for pid in engine_pids(proc.pid):
                    value = vm_hwm_mb(pid)
                    if value is not None:
                        hwm[pid] = max(hwm.get(pid, 0.0), value)
                done.wait(0.25)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        poller.join()
    wall = time.perf_counter() - start
    runs = sorted((scratch / "saves" / "runs").glob("*"))
    result = {"kind": kind, "returncode": proc.returncode, "wall_s": round(wall, 2),
              "loadavg_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
              "peak_rss_mb_ru_maxrss": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
              "peak_rss_mb_engine_vmhwm": round(max(hwm.values()), 1) if hwm else None}
    if runs:
        run = runs[-1]
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        steps = [r for r in records if "loss" in r and "tokens_per_second" in r]
        after = [r["tokens_per_second"] for r in steps[2:]] or [r["tokens_per_second"] for r in steps]
        end = next((r for r in reversed(records) if "train_runtime" in r and "loss" not in r), {})
        last = steps[-1] if steps else {}
        result.update({
            "steps": len(steps),
            "tokens_per_second_median_after_2": round(statistics.median(after), 2) if after else None,
            "tokens_per_second_all": [round(r["tokens_per_second"], 2) for r in steps],
            "train_runtime_s": end.get("train_runtime"),
            "input_tokens": end.get("num_input_tokens_seen"),
            "memory_rss_mb_metrics_max": round(max((r.get("memory_rss_mb", 0) for r in records), default=0), 1),
            "first": {k: steps[0].get(k) for k in ("loss", "rewards/accuracies", "rewards/margins")} if steps else {},
            "final": {k: last.get(k) for k in ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                                               "rewards/margins")},
            "train_loss_mean": end.get("train_loss"),
            "state": json.loads((run / "status.json").read_text()).get("state"),
        })
        if proc.returncode != 0 or result["state"] != "completed":
            result["engine_log_tail"] = (run / "engine.log").read_text()[-3000:]
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def footprint(kind: str, dtype: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", FOOTPRINT, kind, MODEL, dtype], cwd=REPO, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--samples", type=int, default=64, help="data.max_samples")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for every process")
    parser.add_argument("--dtype", default="float32", help="model.dtype (the compute dtype of the quantised bases)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]

    info = machine()
    out = args.out or REPO / "bench" / "results" / f"2026-11-26-qlora-dpo-{machine_slug(info)}.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "TOKENIZERS_PARALLELISM": "false"}
    work = Path(tempfile.mkdtemp(prefix="qlora-bench-config-"))
    config = work / "dpo-qlora.yaml"
    config.write_text(CONFIG.format(model=MODEL, dtype=args.dtype, samples=args.samples, steps=args.steps))

    weights = {}
    for kind in kinds:
        weights[kind] = footprint(kind, args.dtype, env)
        print(f"{kind}: base weights {weights[kind]}", flush=True)

    runs = []
    for i in range(args.repeat):
        for kind in kinds:
            print(f"[{i + 1}/{args.repeat}] {kind} ...", flush=True)
            result = train_once(kind, config, env, work / f"{kind}-{i}.log")
            result["repeat"] = i
            runs.append(result)
            print(json.dumps({k: v for k, v in result.items() if k not in ("tokens_per_second_all",
                                                                             "engine_log_tail")}), flush=True)

    summary = {}
    for kind in kinds:
        mine = [r for r in runs if r["kind"] == kind and r["returncode"] == 0]
        summary[kind] = {
            "runs_ok": len(mine),
            "base_weights_mb": round(weights[kind].get("footprint_mb", 0), 1) or None,
            "quantised_layers_mb": round(weights[kind].get("quantised_layers_mb", 0), 1),
            "peak_rss_mb": median([r["peak_rss_mb_ru_maxrss"] for r in mine]),
            "peak_rss_mb_engine_vmhwm": median([r["peak_rss_mb_engine_vmhwm"] for r in mine]),
            "memory_rss_mb_metrics_max": median([r.get("memory_rss_mb_metrics_max") for r in mine]),
            "tokens_per_second": median([r.get("tokens_per_second_median_after_2") for r in mine]),
            "wall_s": median([r["wall_s"] for r in mine]),
            "final_loss": median([r.get("final", {}).get("loss") for r in mine]),
            "final_rewards_accuracies": median([r.get("final", {}).get("rewards/accuracies") for r in mine]),
            "final_rewards_margins": median([r.get("final", {}).get("rewards/margins") for r in mine]),
            "train_loss_mean": median([r.get("train_loss_mean") for r in mine]),
        }
    base = summary.get("lora", {})
    for kind, s in summary.items():
        for key in ("base_weights_mb", "peak_rss_mb", "tokens_per_second"):
            if base.get(key) and s.get(key):
                s[f"{key}_vs_lora"] = round(s[key] / base[key], 3)

    report = {
        "task": "DPO, model.finetuning_type lora / qlora-8bit / qlora-4bit, via `workbench train`",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(["bench/qlora.py"] + sys.argv[1:]),
        "settings": {"model": MODEL, "dtype": args.dtype, "threads": args.threads, "steps": args.steps,
                     "max_samples": args.samples, "repeat": args.repeat, "order": "alternating",
                     "config": config.read_text(), "gpu": False},
        "peak_rss_note": "peak_rss_mb: ru_maxrss from os.wait4 on `workbench train` (the largest of it and its "
                         "engine child, load included); peak_rss_mb_engine_vmhwm: the engine's VmHWM polled from "
                         "/proc every 0.25 s; memory_rss_mb_metrics_max: the engine's own per-step samples",
        "summary": summary, "base_weights": weights, "runs": runs, "machine": info,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'finetuning_type':<12} {'weights MB':>10} {'peak RSS MB':>11} {'tokens/s':>9} {'RSS/lora':>8} "
          f"{'tok/s/lora':>10} {'loss':>7} {'acc':>5} {'margin':>7}")
    for kind, s in summary.items():
        print(f"{kind:<12} {s['base_weights_mb'] or 0:>10.1f} {s['peak_rss_mb'] or 0:>11.1f} "
              f"{s['tokens_per_second'] or 0:>9.1f} {s.get('peak_rss_mb_vs_lora', 0):>8.3f} "
              f"{s.get('tokens_per_second_vs_lora', 0):>10.3f} {s['final_loss'] or 0:>7.4f} "
              f"{s['final_rewards_accuracies'] or 0:>5.2f} {s['final_rewards_margins'] or 0:>7.4f}")
    print(f"written: {out}")
    return 0 if all(s["runs_ok"] == args.repeat for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
