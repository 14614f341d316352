"""PPO (being written): see engine/ppo.py."""

from __future__ import annotations

from pathlib import Path

from engine.config import RunConfig


def run(cfg: RunConfig, run_dir: Path, callbacks: list) -> Path:
    from engine.ppo import train_ppo

    return train_ppo(cfg, run_dir, callbacks)
