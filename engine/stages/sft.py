"""Supervised fine-tuning: teach the model to answer like the dataset (TRL's SFTTrainer)."""

from __future__ import annotations

from pathlib import Path

from engine.config import RunConfig
from engine.models.store import load_tokenizer
from engine.stages.common import load_splits, load_start_model, train_and_save, trainer_arguments


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list):
    from trl import SFTConfig, SFTTrainer

    train_ds, eval_ds = load_splits(cfg, preference=False)
    model, base_path = load_start_model(cfg)
    tokenizer = load_tokenizer(base_path, cfg.model.template)
    opts = cfg.stage_options
    args = SFTConfig(
        **trainer_arguments(cfg, run_dir, has_eval=eval_ds is not None),
        assistant_only_loss=opts.assistant_only_loss,
        completion_only_loss=opts.completion_only_loss,
    )
    return SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      processing_class=tokenizer, callbacks=callbacks)


def run(cfg: RunConfig, run_dir: Path, callbacks: list) -> Path:
    return train_and_save(build_trainer(cfg, run_dir, callbacks), cfg, run_dir)
