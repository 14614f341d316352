"""The two trainers a training benchmark compares, both built on one Recipe, and one measured run.

workbench  the stage's own ``build_trainer`` (engine.stages.dpo / sft) on the recipe's RunConfig, in a
           run folder under the worker's temporary saves folder, with the engine's run-folder callback,
           in a process set up like an engine process (engine.train)
trl        TRL's DPOTrainer / SFTTrainer configured directly from the same values: the model by path
           with a peft LoraConfig (TRL seeds before it loads and wraps the model, as the workbench does),
           a plain DPOConfig / SFTConfig, in a chosen dtype and, for DPO, with or without
           ``precompute_ref_log_probs``

Both get the same rows and the same tokenizer (engine.bench.recipe), so TRL's tokenisation makes the
same tokens in both; gradient checkpointing is off in both (TRL's default is on).
"""

from __future__ import annotations

import time
from pathlib import Path

from engine.bench.measure import Meter, PrecomputeClock, summary
from engine.bench.recipe import Recipe, run_config, tokenizer, training_rows


def engine_process_settings() -> None:
    """What engine.train's main sets before it trains: denormal floats flushed to zero."""
    import torch

    torch.set_flush_denormal(True)


def workbench_trainer(recipe: Recipe, dtype: str, callbacks: list):
    from engine.runs.folder import create_run
    from engine.stages import dpo, sft
    from engine.stages.callbacks import RunFolderCallback

    cfg = run_config(recipe, dtype)
    run = create_run(cfg)  # under WORKBENCH_SAVES: the worker's temporary saves folder
    stage = {"dpo": dpo, "sft": sft}[recipe.task]
    return stage.build_trainer(cfg, run, [RunFolderCallback(run), *callbacks])


def trl_arguments(recipe: Recipe, dtype: str, output_dir: Path) -> dict:
    """TrainingArguments for TRL's configs: the recipe's values, TRL's defaults for everything else.
    ``bfloat16``: the model loaded in bf16 and bf16 mixed precision (TRL's default is bf16 autocast
    over float32 weights); ``float32``: neither."""
    import torch

    return dict(
        output_dir=str(output_dir), max_steps=recipe.steps, per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=1, learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler_type, warmup_steps=recipe.warmup_ratio,
        max_grad_norm=recipe.max_grad_norm, weight_decay=recipe.weight_decay, seed=recipe.seed,
        data_seed=recipe.seed, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        gradient_checkpointing=False, bf16=dtype == "bfloat16", use_cpu=not torch.cuda.is_available(),
        max_length=recipe.cutoff_len, model_init_kwargs={"dtype": dtype},
    )


def trl_trainer(recipe: Recipe, dtype: str, precompute: bool, output_dir: Path, callbacks: list):
    from peft import LoraConfig

    peft_config = LoraConfig(r=recipe.lora_rank, lora_alpha=recipe.lora_alpha, lora_dropout=0.0,
                             target_modules=recipe.lora_target, task_type="CAUSAL_LM")
    args = trl_arguments(recipe, dtype, output_dir)
    parts = dict(model=recipe.model, train_dataset=training_rows(recipe), processing_class=tokenizer(recipe),
                 peft_config=peft_config, callbacks=callbacks)
    if recipe.task == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer(**parts, args=DPOConfig(**args, beta=recipe.beta, precompute_ref_log_probs=precompute))
    from trl import SFTConfig, SFTTrainer

    return SFTTrainer(**parts, args=SFTConfig(**args))


def measure_training(spec: dict, workdir: Path) -> dict:
    """Build the spec's system, train it for the recipe's steps and measure the run (no final
    evaluation or save: neither is training speed)."""
    recipe = Recipe(**spec["recipe"])
    if spec["system"] == "workbench":  # before the warm-up too: its cached reference must be the engine's numbers
        engine_process_settings()
    if spec.get("warm_reference"):  # an earlier run on the same reference and tokens, not measured
        workbench_trainer(recipe, spec["dtype"], [])
    clock, meter = PrecomputeClock(), Meter()
    if recipe.task == "dpo":
        clock.install()
    start = time.perf_counter()
    if spec["system"] == "workbench":
        trainer = workbench_trainer(recipe, spec["dtype"], [meter])
    else:
        trainer = trl_trainer(recipe, spec["dtype"], spec.get("precompute", False), workdir / "trl-output", [meter])
    build_seconds = time.perf_counter() - start - clock.seconds
    meter.watch(trainer)
    trainer.train()
    dtype = str(next(trainer.model.parameters()).dtype).removeprefix("torch.")
    return {**summary(meter, clock, trainer), "build_seconds": round(build_seconds, 3), "weights_dtype": dtype}
