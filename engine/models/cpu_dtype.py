"""What `dtype: auto` computes in on a CPU: measured once per machine, not read off a CPU flag.

CPUs differ widely in bf16: AMX tiles are rated many times float32 for a bf16 matrix product; AVX-512
BF16 about 2x; with AVX2 only it is emulated and many times slower. So the first run on a machine
times one bf16 and one float32 product of a training-sized shape and keeps the ratio in
``saves/cache/cpu-dtype.json`` (per CPU model, torch version and thread count).

bf16 also changes what a run learns: on SmolLM2 DPO, 8 steps in bf16 ended at loss 0.66 against
0.59 in float32 (TRL and the workbench alike), for a step only 1.4x faster where products ran 1.7-3x.
So auto picks bf16 only where products run at least ``BF16_MIN_SPEEDUP`` times faster, where the
time saved is worth it; `dtype: bfloat16` or `float32` overrides the rule either way for a run, and
the environment variable ``WORKBENCH_CPU_DTYPE`` (bfloat16 or float32) for every run on the machine
(`pytest --cpu-dtype bfloat16` uses it to test as an AMX machine computes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
import time
from pathlib import Path

import torch

from engine.files import atomic_write
from engine.paths import cpu_dtype_file

log = logging.getLogger("engine")
BF16_MIN_SPEEDUP = 5.0  # AVX-512 BF16 measured 1.7-3x here (noisy on a busy machine); AMX is rated far above
SHAPE = (256, 1024, 1024)  # (tokens, in, out): a LoRA-sized layer on a short batch
WAIT_FOR_FIRST_RANK = 120.0  # seconds; far more than a measurement takes


def machine_key() -> str:
    """The CPU model and its flags, torch's version and thread count: what the ratio depends on."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        cpu = next((line for line in info.splitlines() if line.startswith("model name")), "")
        flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    except OSError:
        import platform

        cpu, flags = platform.processor(), ""
    text = f"{cpu}|{hashlib.sha256(flags.encode()).hexdigest()}|{torch.__version__}|{torch.get_num_threads()}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def product_seconds(dtype: torch.dtype, repeats: int = 7) -> float:
    """Median seconds of one (tokens x in) @ (in x out) product in ``dtype``."""
    tokens, inner, out = SHAPE
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(tokens, inner, generator=generator).to(dtype)
    b = torch.randn(inner, out, generator=generator).to(dtype)
    times = []
    for i in range(repeats + 2):  # two to warm up
        start = time.perf_counter()
        a @ b
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_bf16_speedup() -> float:
    return product_seconds(torch.float32) / product_seconds(torch.bfloat16)


def saved_speedups(path: Path) -> dict:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def bf16_speedup() -> float:
    """float32 time / bf16 time of a matrix product on this machine, measured once and cached.

    The ranks of a distributed run must compute in one dtype: the machine's first rank measures while
    the others wait for its result (measuring at once, they would also disturb each other's timing)."""
    key, path = machine_key(), cpu_dtype_file()
    waited = time.monotonic() + (WAIT_FOR_FIRST_RANK if os.environ.get("LOCAL_RANK", "0") != "0" else 0)
    while True:
        saved = saved_speedups(path)
        if isinstance(saved.get(key), (int, float)):
            return float(saved[key])
        if time.monotonic() >= waited:
            break
        time.sleep(0.2)
    speedup = round(measure_bf16_speedup(), 3)
    log.info("bf16 matrix products on this CPU: %.2fx float32 (measured once, kept in %s)", speedup, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({**saved_speedups(path), key: speedup}, indent=1))
    except OSError as e:
        log.warning("could not keep the bf16 measurement (%s): it runs again next time", e)
    return speedup


CPU_DTYPE_ENV = "WORKBENCH_CPU_DTYPE"
CPU_DTYPES = ("bfloat16", "float32")


def cpu_dtype_and_reason() -> tuple[torch.dtype, str]:
    """(the dtype `auto` computes in on this CPU, why: for the run's log)."""
    chosen = os.environ.get(CPU_DTYPE_ENV, "")
    if chosen:
        if chosen not in CPU_DTYPES:
            raise ValueError(f"{CPU_DTYPE_ENV}={chosen!r}: set it to one of {', '.join(CPU_DTYPES)}, "
                             "or unset it to measure this CPU")
        return getattr(torch, chosen), f"set by the environment variable {CPU_DTYPE_ENV}"
    speedup = bf16_speedup()
    dtype = torch.bfloat16 if speedup >= BF16_MIN_SPEEDUP else torch.float32
    return dtype, (f"bf16 matrix products measured {speedup:.2f}x float32 on this CPU; auto takes bf16 "
                   f"from {BF16_MIN_SPEEDUP:g}x (model.dtype overrides it)")
