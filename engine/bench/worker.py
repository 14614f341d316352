"""`python -m engine.bench.worker SPEC.json RESULT.json`: one measured run in a process of its own.

A fresh process per run makes the peak RSS that run's alone and keeps one system's allocations (and
warmed caches) from touching the other's. The harness (engine.bench.harness) writes the spec, sets
the environment (a temporary saves folder, a fresh datasets cache, offline hubs) and reads the result.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Before huggingface_hub and datasets are imported (they read these once): nothing may reach a hub.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_var, "1")

from engine.runs.noise import silence_library_noise  # noqa: E402

silence_library_noise()  # before torch, transformers and bitsandbytes are imported


def process_facts() -> dict:
    """What the numbers of this process ran on (the harness adds the CPU and the versions)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"torch_threads": torch.get_num_threads(), "device": gpu or "cpu"}


def run(spec: dict, workdir: Path) -> dict:
    if spec["task"] == "chat":
        from engine.bench.chat import measure_chat

        measured = measure_chat(spec)
    else:
        from engine.bench.training import measure_training

        measured = measure_training(spec, workdir)
    return {"system": spec["name"], **measured, **process_facts()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m engine.bench.worker SPEC.json RESULT.json", file=sys.stderr)
        return 2
    spec_file, result_file = Path(argv[0]), Path(argv[1])
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    result = run(spec, spec_file.parent)
    result_file.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
