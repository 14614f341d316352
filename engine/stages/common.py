"""What every stage shares: its data splits, TRL's arguments, training and saving.

The model a stage starts from (base + parent run; LoRA, QLoRA or full) is engine.models.loader's
training_model: the one rule it shares with inference (chat, export).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from engine.config import RunConfig
from engine.config.sections import SHARDED_BACKENDS
from engine.data.registry import DatasetError
from engine.models.loader import compute_dtype, save_trained
from engine.runs.checkpoints import KEPT, resume_checkpoint
from engine.runs.folder import RunFolder
from engine.stages import ranks
from engine.stages.callbacks import STOP
from engine.stages.reference_cache import weights_digest

log = logging.getLogger("engine")


def trainer_arguments(cfg: RunConfig, run: RunFolder, has_eval: bool) -> dict[str, Any]:
    """Keyword arguments shared by TRL's *Config classes (they all extend TrainingArguments)."""
    t = cfg.training
    dtype = compute_dtype(cfg.model.dtype)
    on_gpu = torch.cuda.is_available()
    return dict(
        output_dir=str(run.checkpoints_dir),
        num_train_epochs=t.num_train_epochs, max_steps=t.max_steps,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler_type,
        # transformers 5 has no warmup_ratio: its warmup_steps reads a float in [0, 1) as a fraction of the
        # steps (TrainingArguments' documentation), and warmup_ratio's bounds keep it below 1
        warmup_steps=t.warmup_ratio,
        per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        logging_steps=t.logging_steps, logging_first_step=True,
        logging_nan_inf_filter=False,  # a NaN loss must reach the charts and the health check as NaN
        eval_strategy="steps" if has_eval and t.eval_steps else "no",
        eval_steps=t.eval_steps or None,
        # full checkpoints (optimizer, scheduler, RNG, trainer state): what resuming needs (engine.runs.checkpoints);
        # besides save_steps, RunFolderCallback saves every training.save_minutes and when a stop is asked for
        save_strategy="steps" if t.save_steps else "no", save_steps=t.save_steps or 500,
        save_total_limit=KEPT, save_only_model=False,
        gradient_checkpointing=t.gradient_checkpointing,
        seed=t.seed, data_seed=t.seed,
        bf16=on_gpu and dtype == torch.bfloat16, fp16=on_gpu and dtype == torch.float16,
        use_cpu=not on_gpu,
        include_num_input_tokens_seen=True,
        ddp_find_unused_parameters=False,  # every trained weight takes part in each step; the check costs a pass
        report_to="none", disable_tqdm=True, dataloader_num_workers=0,
        max_length=cfg.data.cutoff_len,
    )


def train_and_save(trainer, cfg: RunConfig, run: RunFolder) -> Path:
    """Train, evaluate on the held-out split, and save; a stop request still saves."""
    if trainer.train_dataset is not None and len(trainer.train_dataset) == 0:
        raise DatasetError(
            f"data.cutoff_len: no row of {cfg.data.dataset!r} is left to train on: in every one the prompt alone "
            f"takes {cfg.data.cutoff_len} tokens or more, so truncation leaves no answer token and TRL drops it. "
            "Raise data.cutoff_len (the Datasets tab's check shows the rows' token lengths)")
    if ranks.distributed() and ranks.is_main():
        log.info("%d ranks, accelerate's %s, on %s", ranks.world_size(), trainer.accelerator.distributed_type.value,
                 trainer.accelerator.device)
    checkpoint = resume_checkpoint(run)  # set by `workbench train --resume` / Resume; engine.train rewound the run
    trainer.train(resume_from_checkpoint=str(checkpoint.path) if checkpoint else None)
    every = cfg.training.eval_steps
    just_evaluated = every and trainer.state.global_step % every == 0  # eval_steps already hit the last step
    if trainer.eval_dataset is not None and not STOP.requested and not just_evaluated:
        trainer.evaluate()
    model = trainer.accelerator.unwrap_model(trainer.model)
    if ranks.distributed() and cfg.distributed.backend == "ddp":
        # each rank holds the whole model: equal digests in engine.log show the ranks stayed in step
        log.info("trained weights sha256 %s", weights_digest(model, part="trained"))
    if cfg.distributed.backend in SHARDED_BACKENDS:  # the weights are spread over the ranks: all take part
        return save_sharded(trainer, cfg, run)
    return save_weights(model, cfg, run, trainer.processing_class) if ranks.is_main() else run.weights_dir(
        cfg.model.finetuning_type == "full")


def save_sharded(trainer, cfg: RunConfig, run: RunFolder) -> Path:
    """Gather the sharded weights and save them from rank 0 (transformers' save_model knows FSDP and
    ZeRO-3); a LoRA run keeps only its own adapter, not TRL's "ref" copy."""
    out = run.weights_dir(cfg.model.finetuning_type == "full")
    trainer.save_model(str(out))
    if ranks.is_main():
        shutil.rmtree(out / "ref", ignore_errors=True)
        log.info("saved %s", out)
    return out


def save_weights(model, cfg: RunConfig, run: RunFolder, tokenizer) -> Path:
    """Save the trained adapter (LoRA) or the whole model (full) where the run contract says."""
    full = cfg.model.finetuning_type == "full"
    out = save_trained(model, run.weights_dir(full), tokenizer, full)
    log.info("saved %s", out)
    return out
