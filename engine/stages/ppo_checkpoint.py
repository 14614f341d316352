"""PPO's checkpoints: its own training loop saves what transformers' Trainer saves for the other
stages (same file names, so engine.runs.checkpoints judges them by one rule), plus the value head
and the adaptive-KL and score-normalisation state, so a resumed PPO run goes on where it stopped.

    checkpoint-N/  adapter_model.safetensors (or model.safetensors), value_head.safetensors,
                   optimizer.pt, scheduler.pt, rng_state.pth, ppo_state.json, trainer_state.json (last)
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from engine.runs.checkpoints import KEPT, PREFIX, STATE_FILE, all_checkpoints
from engine.runs.folder import RunFolder
from engine.stages import ppo_math

log = logging.getLogger("engine")


def save(run: RunFolder, m: dict, state, kl_coef: float, moments: ppo_math.RunningMoments) -> Path:
    """Write checkpoint-<step>; trainer_state.json goes last, so a folder without it is partial."""
    out = run.checkpoints_dir / f"{PREFIX}{state.global_step}"
    out.mkdir(parents=True, exist_ok=True)
    policy = m["policy"]
    if hasattr(policy, "peft_config"):
        policy.save_pretrained(out, selected_adapters=["default"])  # not the frozen "ref" adapter
    else:
        policy.save_pretrained(out)
    save_file({k: v.detach().cpu().contiguous() for k, v in m["value_head"].state_dict().items()},
              out / "value_head.safetensors")
    torch.save(m["optimizer"].state_dict(), out / "optimizer.pt")
    torch.save(m["scheduler"].state_dict(), out / "scheduler.pt")
    torch.save({"cpu": torch.get_rng_state()}, out / "rng_state.pth")
    moments_state = {"count": moments.count, "mean": moments.mean, "var": moments.var}
    (out / "ppo_state.json").write_text(json.dumps({"kl_coef": kl_coef, "moments": moments_state}))
    state.save_to_json(str(out / STATE_FILE))
    for old in all_checkpoints(run)[:-KEPT]:
        shutil.rmtree(old.path, ignore_errors=True)
    log.info("saved %s", out.relative_to(run.path))
    return out


def load(path: Path, m: dict, moments: ppo_math.RunningMoments):
    """Put a checkpoint back into the models, optimizer, scheduler and RNG; returns (TrainerState,
    kl_coef)."""
    from transformers import TrainerState

    policy = m["policy"]
    if hasattr(policy, "peft_config"):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(policy, load_file(path / "adapter_model.safetensors"), adapter_name="default")
    else:
        weights = {}
        for shard in sorted(path.glob("model*.safetensors")):  # one file, or the shards of a large model
            weights.update(load_file(shard))
        policy.load_state_dict(weights, strict=False)
    m["value_head"].load_state_dict(load_file(path / "value_head.safetensors"))
    m["optimizer"].load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    m["scheduler"].load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    torch.set_rng_state(torch.load(path / "rng_state.pth", weights_only=True)["cpu"])
    extra = json.loads((path / "ppo_state.json").read_text())
    moments.count, moments.mean, moments.var = (extra["moments"][k] for k in ("count", "mean", "var"))
    return TrainerState.load_from_json(str(path / STATE_FILE)), extra["kl_coef"]
