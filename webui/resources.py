"""The resource panel: CPU, RAM and (when there is one) GPU memory, plus the running engine's own use.

psutil for the host, ``nvidia-smi`` for the GPU (so the UI process never initialises CUDA or even
imports torch just to draw a gauge). GPU readings are cached for a few seconds because starting
nvidia-smi costs more than the rest of a timer tick.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import psutil

from engine.runs import queue
from engine.runs.folder import RunFolder

GPU_CACHE_SECONDS = 5.0
_gpu_cache: dict = {"at": 0.0, "text": None}
_engine_procs: dict[int, psutil.Process] = {}  # cpu_percent() measures since the previous call on the same object


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def gpu_memory() -> str | None:
    """'GPU 0: 3.1 / 80.0 GiB' lines from nvidia-smi, or None without an NVIDIA GPU."""
    if time.monotonic() - _gpu_cache["at"] < GPU_CACHE_SECONDS:
        return _gpu_cache["text"]
    text = None
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.used,memory.total",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
            rows = [r.split(", ") for r in out.stdout.strip().splitlines() if r.count(", ") == 3]
            text = " · ".join(f"GPU {i} ({name}): {_gb(float(used) * 2**20)} / {_gb(float(total) * 2**20)}"
                              for i, name, used, total in rows) or None
        except (OSError, subprocess.SubprocessError, ValueError):
            text = None
    _gpu_cache.update(at=time.monotonic(), text=text)
    return text


def engine_usage(followed: RunFolder | None = None) -> str | None:
    """The engine to show, with its RSS and CPU share: the followed run's while it trains (so the
    line agrees with the run's status beside it), else the one the queue runs; None when none runs."""
    run = followed if followed is not None and followed.status().engine_alive else queue.active_run()
    if run is None:
        return None
    try:
        pid = run.status().pid
        proc = _engine_procs.get(pid) or _engine_procs.setdefault(pid, psutil.Process(pid))
        with proc.oneshot():
            rss, cpu = proc.memory_info().rss, proc.cpu_percent(interval=None)
    except (psutil.Error, TypeError, ValueError):  # it ended (or is not ours to read) between two calls
        return f"engine `{run.name}` running (its memory and CPU use are unreadable)"
    return f"engine `{run.name}`: {_gb(rss)} RSS, {cpu:.0f}% CPU"


def resources_markdown(followed: RunFolder | None = None) -> str:
    """One line for the Train tab, re-read on every timer tick with the followed run's status."""
    mem = psutil.virtual_memory()
    parts = [f"CPU {psutil.cpu_percent(interval=None):.0f}% of {psutil.cpu_count()} cores",
             f"RAM {_gb(mem.total - mem.available)} / {_gb(mem.total)}",
             gpu_memory() or "no GPU"]
    parts.append(engine_usage(followed) or "no engine running")
    return "🖥️ " + " · ".join(parts)
