"""What a benchmark ran on: the CPU (model, cores, the instruction sets that decide whether bf16 is
fast), the GPU if any, and the versions of the libraries that do the work. Read without importing
torch; the workers add torch's thread count and device (engine.bench.worker)."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

# bf16 matrix products are fast only with one of these (AVX-512 BF16 or AMX); without them torch
# emulates bf16 and it was measured many times slower than float32.
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")
LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """(CPU model name, its feature flags) from /proc/cpuinfo; ('', set()) where there is none."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor(), set()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields.get("model name", platform.processor()), set(fields.get("flags", "").split())


def version(library: str) -> str | None:
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return None


def describe() -> dict:
    model, flags = cpu_info()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": cores,
        "bf16_flags": sorted(f for f in BF16_FLAGS if f in flags),
        "avx512": "avx512f" in flags,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: version(name) for name in LIBRARIES},
    }


def fast_cpu_bf16(machine: dict) -> bool:
    return bool(machine["bf16_flags"])


def one_line(machine: dict) -> str:
    flags = ", ".join(machine["bf16_flags"]) or "no bf16 instructions"
    gpu = machine.get("device") if machine.get("device") not in (None, "cpu") else "no GPU"
    threads = f", {machine['torch_threads']} torch threads" if machine.get("torch_threads") else ""
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if k in ("torch", "transformers", "trl"))
    return f"{machine['cpu']} ({machine['cores']} cores{threads}; {flags}), {gpu}; {versions}"
