"""Which weights a run stands on, and in which dtype: one rule for training (engine.stages) and for
inference (engine.inference.generate, engine.inference.chat, engine.models.export).

Runs chain through ``init_from``. A LoRA run that continues a LoRA parent keeps training the
parent's adapter, so every run's ``adapter/`` applies directly to one base model (no adapter
stacks to replay when chatting or exporting). A run whose parent is a full fine-tune uses the
parent's ``model/`` as its base.

Light on purpose: torch is imported inside compute_dtype only, so the web UI process may import
this module without pulling in torch or the trainers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import ConfigError, RunConfig, stage_of
from engine.models.store import resolve_model
from engine.runs.folder import output_dir, read_config, read_status, resolve_run

if TYPE_CHECKING:
    import torch


def compute_dtype(name: str = "auto") -> torch.dtype:
    """Resolve a config's dtype. On CPUs without bf16 matrix units (AMX), bf16 matmuls are
    emulated and measured ~30x slower than fp32, so `auto` only picks bf16 where it is fast."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if torch.cpu._is_amx_tile_supported() else torch.float32


def run_weights(run_dir: Path) -> Path:
    """The run's adapter/ or model/ folder; a clear error while it has none."""
    weights = output_dir(run_dir)
    if weights is None:
        raise FileNotFoundError(f"run {Path(run_dir).name} has no saved adapter or model yet")
    return weights


def _find_parent(init_from: str) -> Path:
    """init_from as recorded: a run folder's path (maybe relative to another working directory,
    or from before the saves folder moved) or a name; the error names what was recorded."""
    try:
        return resolve_run(init_from)
    except FileNotFoundError as recorded:
        try:
            return resolve_run(Path(init_from).name)
        except FileNotFoundError:
            raise recorded from None


def parent_run(cfg: RunConfig) -> Path | None:
    """The init_from run folder, checked to have finished weights."""
    if not cfg.init_from:
        return None
    try:
        parent = _find_parent(cfg.init_from)
    except FileNotFoundError as e:
        raise ConfigError(f"init_from: {e}") from None
    if output_dir(parent) is None:
        state = read_status(parent).get("state")
        raise ConfigError(f"init_from: run {parent.name} has no saved adapter or model (state: {state}); "
                          "pick a completed or stopped run")
    stage = stage_of(read_config(parent).stage)
    if not stage.writes_answers:
        raise ConfigError(f"init_from: {parent.name} is {stage.a_run} (a reward model), which scores answers but "
                          "does not write them; start from a run whose weights answer, e.g. an SFT run (PPO takes "
                          "the reward model as ppo.reward_run)")
    return parent


def finished_run(arg: str, name: str | Path, stages: tuple[str, ...] = (), want: str = "") -> Path:
    """A run folder with saved weights (of one of the stages, if given), for a setting or argument
    that names a run (ppo.reward_run, --compare ...); the errors name that setting."""
    try:
        run_dir = resolve_run(str(name))
    except FileNotFoundError as e:
        raise ConfigError(f"{arg}: {e}") from None
    stage = read_config(run_dir).stage
    if stages and stage not in stages:
        raise ConfigError(f"{arg}: run {run_dir.name} is {stage_of(stage).a_run}; pick {want}")
    if output_dir(run_dir) is None:
        raise ConfigError(f"{arg}: run {run_dir.name} has no saved adapter or model yet; pick a finished run")
    return run_dir


def base_model_path(cfg: RunConfig) -> Path:
    """The base weights a run's adapter applies to: its config's model or, up the init_from chain,
    the first full fine-tune's model/."""
    parent = parent_run(cfg)
    if parent is None:
        return resolve_model(cfg.model.name_or_path)
    out = output_dir(parent)
    return out if out.name == "model" else base_model_path(read_config(parent))


def run_base_model(run_dir: Path) -> Path:
    """base_model_path of a run folder's config, absolute (chat compares it with a picked base)."""
    return base_model_path(read_config(run_dir)).resolve()
