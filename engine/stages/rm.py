"""Reward modelling: a scalar head on the model, trained on preference pairs to score the chosen
answer above the rejected one (TRL's RewardTrainer, a Bradley-Terry loss).

With LoRA the adapter trains together with the new ``score`` head (``modules_to_save``), and both
are saved in ``adapter/``. With ``init_from`` an SFT run, the SFT adapter is merged into the base
first, so the reward model reads answers the way the policy writes them; engine.inference.reward replays
the same chain when PPO or evaluation loads the reward model.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import RunConfig
from engine.data.rows import load_splits
from engine.models.loader import load_tokenizer, lora_targets, scoring_backbone
from engine.runs.folder import RunFolder
from engine.stages.common import train_and_save, trainer_arguments


def build_trainer(cfg: RunConfig, run: RunFolder, callbacks: list):
    from peft import LoraConfig, get_peft_model
    from trl import RewardConfig, RewardTrainer

    train_ds, eval_ds = load_splits(cfg, preference=True)
    model, base_path = scoring_backbone(cfg)
    tokenizer = load_tokenizer(base_path, cfg.model.template)
    if cfg.model.finetuning_type != "full":
        lora = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=lora_targets(cfg), task_type="SEQ_CLS", modules_to_save=["score"])
        model = get_peft_model(model, lora)
    opts = cfg.stage_options
    args = RewardConfig(**trainer_arguments(cfg, run, has_eval=eval_ds is not None),
                        center_rewards_coefficient=opts.center_rewards_coefficient or None)
    return RewardTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, callbacks=callbacks)


def run(cfg: RunConfig, run: RunFolder, callbacks: list) -> Path:
    return train_and_save(build_trainer(cfg, run, callbacks), cfg, run)
