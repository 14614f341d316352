"""The settings both systems of a benchmark share, in one place: what makes their tokens identical.

A ``Recipe`` is plain data (it travels to each worker process as JSON). The workbench reads it as a
RunConfig (``run_config``: what the engine would read from a run folder's config.yaml); TRL reads
the same values as its own DPOConfig / SFTConfig (engine.bench.training). Both take their rows from
``training_rows`` (the engine's own data loading) and their tokenizer from ``tokenizer`` (the
engine's, with the chat template), so the conversations and the template are the same text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.config import DPOOptions, LoraConfig, RunConfig, TrainingConfig, from_dict

_TRAINING, _LORA = TrainingConfig(), LoraConfig()

# Per task: the shipped dataset, the batch and the default length of a run (the setup:
# 64 SQL pairs in 16 steps of 4; 96 SFT rows in 12 steps of 8; chat answers of 64 new tokens).
TASKS = {
    "dpo": {"dataset": "sql_dpo", "batch_size": 4, "steps": 16},
    "sft": {"dataset": "sql_sft", "batch_size": 8, "steps": 12},
    "chat": {"dataset": "", "batch_size": 1, "steps": 64},
}
CHAT_PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."
CHAT_COLUMNS = (2, 4)  # the base + 1 run, the base + 3 runs


@dataclass(frozen=True)
class Recipe:
    task: str  # dpo | sft | chat
    model: str  # an absolute model folder: workers run with another saves folder
    dataset_dir: str
    dataset: str = ""
    steps: int = 16  # optimiser steps (chat: new tokens per answer)
    batch_size: int = 4
    template: str = "model"
    cutoff_len: int = 256
    learning_rate: float = 5e-5
    # the workbench's own defaults for the rest (engine.config, read here, never restated), given to TRL
    # explicitly so both train alike
    seed: int = _TRAINING.seed
    lr_scheduler_type: str = _TRAINING.lr_scheduler_type
    warmup_ratio: float = _TRAINING.warmup_ratio
    max_grad_norm: float = _TRAINING.max_grad_norm
    weight_decay: float = _TRAINING.weight_decay
    lora_rank: int = _LORA.rank
    lora_alpha: int = _LORA.alpha
    lora_target: str = _LORA.target
    beta: float = DPOOptions().beta  # DPO, sigmoid loss

    @property
    def rows(self) -> int:
        """Rows trained on: one epoch of exactly ``steps`` batches (fewer when the dataset is smaller),
        so a reference precompute scores only the rows that train."""
        return self.steps * self.batch_size

    def to_dict(self) -> dict:
        return asdict(self)


def run_config(recipe: Recipe, dtype: str = "auto") -> RunConfig:
    """The workbench's RunConfig for the recipe, as a user would write it: no samples, no checkpoints
    and no eval split (neither system evaluates or saves inside the measured time)."""
    stage_section = {"loss_type": "sigmoid", "beta": recipe.beta, "pref_ftx": 0.0} if recipe.task == "dpo" else {}
    return from_dict({
        "stage": recipe.task, "name": "bench",
        "model": {"name_or_path": recipe.model, "template": recipe.template, "finetuning_type": "lora",
                  "dtype": dtype},
        "lora": {"rank": recipe.lora_rank, "alpha": recipe.lora_alpha, "dropout": 0.0, "target": recipe.lora_target},
        "data": {"dataset": recipe.dataset, "dataset_dir": recipe.dataset_dir, "max_samples": recipe.rows,
                 "cutoff_len": recipe.cutoff_len, "val_size": 0.0},
        "training": {"max_steps": recipe.steps, "per_device_train_batch_size": recipe.batch_size,
                     "gradient_accumulation_steps": 1, "learning_rate": recipe.learning_rate,
                     "lr_scheduler_type": recipe.lr_scheduler_type, "warmup_ratio": recipe.warmup_ratio,
                     "max_grad_norm": recipe.max_grad_norm, "weight_decay": recipe.weight_decay,
                     "logging_steps": 1, "eval_steps": 0, "save_steps": 0, "save_minutes": 0.0,
                     "gradient_checkpointing": False, "seed": recipe.seed},
        "samples": {"count": 0},
        recipe.task: stage_section,
    })


def training_rows(recipe: Recipe):
    """The rows both systems train on, through the engine's own loading and conversion."""
    from engine.data.rows import load_splits

    train, _eval = load_splits(run_config(recipe), preference=recipe.task == "dpo")
    return train


def tokenizer(recipe: Recipe):
    """The engine's tokenizer for the recipe's model and chat template (pad token included)."""
    from engine.models.loader import load_tokenizer

    return load_tokenizer(recipe.model, recipe.template)
