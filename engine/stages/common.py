"""What every stage shares: the starting model (base + parent run), data, TRL arguments.

Which run is the parent, which base its adapter applies to and the dtype are engine.models.loader'
rules, shared with inference (chat, export).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from engine.config import ConfigError, RunConfig
from engine.data.rows import load_dataset_for_stage, split_train_eval
from engine.models.loader import base_model_path, compute_dtype, parent_run
from engine.models.store import resolve_model
from engine.runs.folder import output_dir, read_config
from engine.stages.callbacks import STOP

log = logging.getLogger("engine")


def check_same_model(cfg: RunConfig, parent: Path) -> None:
    parent_cfg = read_config(parent).model
    if resolve_model(parent_cfg.name_or_path) != resolve_model(cfg.model.name_or_path):
        raise ConfigError(f"model.name_or_path: {cfg.model.name_or_path!r} differs from the parent run's "
                          f"{parent_cfg.name_or_path!r}; an adapter only fits the model it was trained on")
    if parent_cfg.template != cfg.model.template:
        raise ConfigError(f"model.template: {cfg.model.template!r} differs from the parent run's "
                          f"{parent_cfg.template!r}; the parent learned its turns in that format")


def quantization(cfg: RunConfig):
    """bitsandbytes settings for QLoRA (None otherwise); bitsandbytes >= 0.46 also runs on CPU."""
    kind = cfg.model.finetuning_type
    if not kind.startswith("qlora"):
        return None
    from transformers import BitsAndBytesConfig

    if kind == "qlora-8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype(cfg.model.dtype))


def load_start_model(cfg: RunConfig):
    """The model a stage trains: base (+ parent weights) wrapped for LoRA or full training.

    Returns (model, base_path). For LoRA the model is a PeftModel whose trainable adapter is
    either fresh or the parent's; with a parent adapter, TRL's DPO trainer keeps a frozen copy of
    it as the reference, so the reference is the parent (SFT) model, not the bare base.
    """
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, set_seed

    parent = parent_run(cfg)
    if parent is not None:
        check_same_model(cfg, parent)
    set_seed(cfg.training.seed)  # a new adapter's initial weights are drawn here, before the trainer seeds
    base_path = base_model_path(cfg)
    quantized = quantization(cfg)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=compute_dtype(cfg.model.dtype),
                                                 quantization_config=quantized)
    if quantized is not None:  # casts norms to fp32 and enables input grads for the frozen quantised base
        model = prepare_model_for_kbit_training(model, cfg.training.gradient_checkpointing)
    parent_out = output_dir(parent) if parent else None
    parent_adapter = parent_out if parent_out is not None and parent_out.name == "adapter" else None

    if cfg.model.finetuning_type == "full":
        if parent_adapter is not None:
            # from_pretrained freezes the base for adapter training; a full fine-tune trains all of it
            model = PeftModel.from_pretrained(model, parent_adapter).merge_and_unload().requires_grad_(True)
        return model, base_path
    if parent_adapter is not None:
        log.info("continuing the adapter of %s (its LoRA shape wins over the lora section)", parent.name)
        return PeftModel.from_pretrained(model, parent_adapter, is_trainable=True), base_path
    lora = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=lora_targets(cfg), task_type="CAUSAL_LM")
    return get_peft_model(model, lora), base_path


def lora_targets(cfg: RunConfig) -> str | list[str]:
    if cfg.lora.target == "all-linear":
        return "all-linear"
    return [t.strip() for t in cfg.lora.target.split(",") if t.strip()]


def load_splits(cfg: RunConfig, preference: bool):
    """(train, eval or None) in TRL's conversational format."""
    d = cfg.data
    train = load_dataset_for_stage(d.dataset, d.dataset_dir, preference, d.max_samples)
    if d.eval_dataset:
        return train, load_dataset_for_stage(d.eval_dataset, d.dataset_dir, preference)
    return split_train_eval(train, d.val_size, cfg.training.seed)


def trainer_arguments(cfg: RunConfig, run_dir: Path, has_eval: bool) -> dict[str, Any]:
    """Keyword arguments shared by TRL's *Config classes (they all extend TrainingArguments)."""
    t = cfg.training
    dtype = compute_dtype(cfg.model.dtype)
    on_gpu = torch.cuda.is_available()
    return dict(
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=t.num_train_epochs, max_steps=t.max_steps,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler_type, warmup_steps=t.warmup_ratio,
        per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        logging_steps=t.logging_steps, logging_first_step=True,
        logging_nan_inf_filter=False,  # a NaN loss must reach the charts and the health check as NaN
        eval_strategy="steps" if has_eval and t.eval_steps else "no",
        eval_steps=t.eval_steps or None,
        save_strategy="steps" if t.save_steps else "no", save_steps=t.save_steps or 500,
        save_total_limit=2, save_only_model=True,
        gradient_checkpointing=t.gradient_checkpointing,
        seed=t.seed, data_seed=t.seed,
        bf16=on_gpu and dtype == torch.bfloat16, fp16=on_gpu and dtype == torch.float16,
        use_cpu=not on_gpu,
        include_num_input_tokens_seen=True,
        report_to="none", disable_tqdm=True, dataloader_num_workers=0,
        max_length=cfg.data.cutoff_len,
    )


def train_and_save(trainer, cfg: RunConfig, run_dir: Path) -> Path:
    """Train, evaluate on the held-out split, and save; a stop request still saves."""
    trainer.train()
    every = cfg.training.eval_steps
    just_evaluated = every and trainer.state.global_step % every == 0  # eval_steps already hit the last step
    if trainer.eval_dataset is not None and not STOP.requested and not just_evaluated:
        trainer.evaluate()
    return save_final(trainer, cfg, run_dir, trainer.processing_class)


def save_final(trainer, cfg: RunConfig, run_dir: Path, tokenizer) -> Path:
    """Save a trainer's result where the run contract says."""
    return save_weights(trainer.accelerator.unwrap_model(trainer.model), cfg, run_dir, tokenizer)


def save_weights(model, cfg: RunConfig, run_dir: Path, tokenizer) -> Path:
    """Save the trained adapter (LoRA) or the whole model (full) where the run contract says."""
    out = run_dir / ("model" if cfg.model.finetuning_type == "full" else "adapter")
    if cfg.model.finetuning_type != "full":
        # TRL's DPO trainer keeps the frozen reference as an extra "ref" adapter; only ours is the result.
        model.save_pretrained(out, selected_adapters=["default"])
    else:
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    log.info("saved %s", out)
    return out
