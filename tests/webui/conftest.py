"""Fixtures for the web UI tests: hand-made run folders in a per-test saves/ (nothing trains)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import from_dict
from engine.rundir import append_metrics, create_run, write_status
from tests.conftest import tiny_config


@pytest.fixture
def runs_env(tmp_path, monkeypatch) -> Path:
    """An empty saves/ of this test's own, so run listings hold only the test's runs."""
    monkeypatch.setenv("WORKBENCH_SAVES", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def make_run(stage: str = "sft", state: str = "completed", metrics: list[dict] = (), name: str = "test",
             log: str = "", stamp: str | None = None, **status) -> Path:
    """A run folder as the engine leaves it, without training: config, status, metrics, log.

    ``stamp`` renames the folder to ``<stamp>-<stage>-<name>``: folders are ordered by name, and
    runs made within one second would otherwise order by stage, not by age.
    """
    run_dir = create_run(from_dict({**tiny_config(stage), "name": name}))
    if stamp:
        run_dir = run_dir.rename(run_dir.with_name(f"{stamp}-{stage}-{name}"))
    now = time.time()
    write_status(run_dir, **{"state": state, "pid": None, "started": now - 90,
                             "ended": now if state in ("completed", "failed", "stopped") else None,
                             "step": 4, "max_steps": 4, **status})
    for record in metrics:
        append_metrics(run_dir, record)
    if log:
        (run_dir / "engine.log").write_text(log, encoding="utf-8")
    return run_dir


def dpo_metrics() -> list[dict]:
    """Two train lines and one eval line with TRL's DPO keys."""
    lines = []
    for step in (1, 2):
        lines.append({"step": step, "epoch": step / 4, "loss": 0.7 - 0.1 * step, "learning_rate": 1e-3,
                      "grad_norm": 1.5, "rewards/chosen": 0.01 * step, "rewards/rejected": -0.02 * step,
                      "rewards/accuracies": 0.5 + 0.25 * step, "rewards/margins": 0.03 * step,
                      "logps/chosen": -40.0, "logps/rejected": -45.0, "wall_time": step * 1.0,
                      "tokens_per_second": 100.0, "memory_rss_mb": 500.0})
    lines.append({"step": 2, "epoch": 0.5, "eval_loss": 0.6, "eval_rewards/chosen": 0.02,
                  "eval_rewards/rejected": -0.01, "eval_rewards/accuracies": 0.8, "eval_rewards/margins": 0.03,
                  "eval_logps/chosen": -41.0, "eval_logps/rejected": -44.0, "wall_time": 2.5,
                  "memory_rss_mb": 510.0})
    return lines


def sft_metrics() -> list[dict]:
    return [{"step": s, "epoch": s / 4, "loss": 2.0 / s, "learning_rate": 1e-3, "grad_norm": 1.0,
             "wall_time": float(s), "memory_rss_mb": 400.0} for s in (1, 2, 3)] + \
           [{"step": 3, "epoch": 0.75, "eval_loss": 1.1, "wall_time": 3.5, "memory_rss_mb": 400.0}]
