"""Supervised fine-tuning: teach the model to answer like the dataset (TRL's SFTTrainer)."""

from __future__ import annotations

from pathlib import Path

from engine import seams
from engine.config import RunConfig
from engine.data.rows import load_splits
from engine.models.loader import load_tokenizer, training_model
from engine.runs.folder import RunFolder
from engine.stages.common import train_and_save, trainer_arguments


def build_trainer(cfg: RunConfig, run: RunFolder, callbacks: list):
    from trl import SFTConfig, SFTTrainer

    seams.score_labelled_positions_only(cfg.training.speedups)  # the answer tokens alone: the prompt's are masked
    train_ds, eval_ds = load_splits(cfg, preference=False)
    model, base_path = training_model(cfg)
    tokenizer = load_tokenizer(base_path, cfg.model.template)
    opts = cfg.stage_options
    args = SFTConfig(
        **trainer_arguments(cfg, run, has_eval=eval_ds is not None),
        assistant_only_loss=opts.assistant_only_loss,
        completion_only_loss=opts.completion_only_loss,
    )
    return SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      processing_class=tokenizer, callbacks=callbacks)


def run(cfg: RunConfig, run: RunFolder, callbacks: list) -> Path:
    return train_and_save(build_trainer(cfg, run, callbacks), cfg, run)
