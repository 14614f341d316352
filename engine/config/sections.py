"""The settings of a run that every stage shares (model, LoRA, data, training), and those of
inference outside a run (Sampling for chat and `workbench generate`, EvalConfig for evaluation).

Each field's metadata carries its help text and its bounds (``min``/``max``) or ``choices``;
``advanced`` marks fields a form may fold away. The web UI's forms and widgets and the CLI's
flags are generated from these fields, so no default is written anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.config.fields import opt
from engine.config.templates import TEMPLATE_CHOICES

# The one default length of an answer, for chat, `workbench generate` and evaluation alike.
MAX_NEW_TOKENS = 128


@dataclass
class ModelConfig:
    name_or_path: str = opt(
        "SmolLM2-135M-Instruct",
        "A local model name (see `workbench models`) or the path of any Hugging Face model folder.",
    )
    finetuning_type: str = opt(
        "lora", "lora: train a small adapter (fast, small files); qlora-4bit / qlora-8bit: the same on a "
                "base model quantised to 4 or 8 bits (bitsandbytes; less memory, slower steps); "
                "full: update every weight.",
        choices=["lora", "qlora-4bit", "qlora-8bit", "full"],
    )
    template: str = opt(
        "model", "Chat template: model = the model's own; chatml / llama3 / alpaca for models without one "
                 "or to train another format. Chat and export use the template the run trained with.",
        choices=TEMPLATE_CHOICES,
    )
    dtype: str = opt(
        "auto",
        "Compute dtype. auto: bfloat16 on GPUs, and on CPUs whose bf16 matrix products measured at least 5x "
        "float32 (AMX); else float32 (bf16 changes what a run learns a little).",
        choices=["auto", "bfloat16", "float16", "float32"], advanced=True,
    )


@dataclass
class LoraConfig:
    rank: int = opt(8, "LoRA rank r: adapter capacity.", min=1, max=256)
    alpha: int = opt(16, "LoRA alpha: the adapter's update is scaled by alpha / rank.", min=1, max=512)
    dropout: float = opt(0.0, "Dropout on the adapter's input (0 is fastest: on CPU, dropout cost ~18% of a LoRA step).",
                         min=0.0, max=0.9, advanced=True)
    target: str = opt(
        "all-linear",
        "Modules to adapt: all-linear, or comma-separated module names such as q_proj,v_proj.",
        advanced=True,
    )


@dataclass
class DataConfig:
    dataset: str = opt("sql_sft", "Training dataset: a name registered in dataset_info.json.")
    eval_dataset: str | None = opt(
        None, "Held-out dataset for evaluation (a registered name). Empty: split val_size off the training set.",
    )
    val_size: float = opt(
        0.0, "Used when eval_dataset is empty: fraction (< 1) or row count (>= 1) held out for eval.",
        min=0.0, max=100000.0, advanced=True,
    )
    max_samples: int | None = opt(None, "Use only the first N training rows (empty: all).", min=1, empty="all")
    cutoff_len: int = opt(512, "Maximum tokens per example (prompt + answer); longer ones are truncated.",
                          min=16, max=131072)
    dataset_dir: str = opt("data", "Folder holding dataset_info.json and the data files.", advanced=True)


@dataclass
class TrainingConfig:
    num_train_epochs: float = opt(1.0, "Passes over the training set.", min=0.01, max=100.0)
    max_steps: int = opt(-1, "Stop after this many optimiser steps (-1: run all epochs).", min=-1)
    learning_rate: float = opt(2e-4, "Peak learning rate (LoRA likes ~1e-4; full fine-tuning ~1e-5).",
                               min=0.0, max=1.0)
    lr_scheduler_type: str = opt("cosine", "Learning-rate schedule after warm-up.",
                                 choices=["linear", "cosine", "constant", "constant_with_warmup"])
    warmup_ratio: float = opt(0.05, "Fraction of the steps spent warming the learning rate up.",
                              min=0.0, max=0.5, advanced=True)
    per_device_train_batch_size: int = opt(4, "Examples per forward pass.", min=1, max=1024)
    gradient_accumulation_steps: int = opt(2, "Forward passes per optimiser step.", min=1, max=1024)
    per_device_eval_batch_size: int = opt(8, "Examples per evaluation forward pass.", min=1, max=1024,
                                          advanced=True)
    weight_decay: float = opt(0.0, "AdamW weight decay.", min=0.0, max=1.0, advanced=True)
    max_grad_norm: float = opt(1.0, "Gradient clipping norm.", min=0.0, max=1000.0, advanced=True)
    logging_steps: int = opt(1, "Log metrics every N optimiser steps (each log is a point on the live charts; "
                                 "logging costs next to nothing beside a step).", min=1)
    eval_steps: int = opt(0, "Evaluate every N steps (0: only at the end).", min=0)
    save_steps: int = opt(0, "Also save a checkpoint every N steps (0: by time only, see save_minutes).", min=0,
                          advanced=True)
    save_minutes: float = opt(5.0, "Save a checkpoint (weights, optimizer, scheduler, RNG: all that Resume needs) "
                                   "when this many minutes have passed since the last one, so a crash loses at most "
                                   "that much training; a Stop saves one too (0: neither, only the final adapter).",
                              min=0.0, max=1440.0, advanced=True)
    gradient_checkpointing: bool = opt(False, "Recompute activations in backward: less memory, ~30% slower.",
                                       advanced=True)
    seed: int = opt(42, "Random seed for data order and adapter initialisation.", min=0)
    speedups: bool = opt(True, "The workbench's speed-ups (scoring only the answer tokens on a CPU; DPO's pairs packed "
                               "and its reference pass cached): the same losses, faster. Off runs TRL's and PEFT's "
                               "own code paths, e.g. to rule the speed-ups out when something looks wrong.",
                         advanced=True)


@dataclass
class SamplesConfig:
    """Answers to a few fixed prompts during training (engine.stages.samples): the model itself,
    watched beside its metrics, and the degeneration alarms computed on them (engine.runs.health)."""

    count: int = opt(3, "Prompts the model answers greedily during training, to watch the model and not only its "
                        "metrics (0: none). Spread evenly over the eval set, else the training set.",
                     min=0, max=16)
    every: int = opt(0, "Answer them every N steps (0: about ten times a run, fewer when answering would take "
                        "more than a tenth of the run's time); always at step 0 (the baseline), at each quarter of "
                        "the run (cut shorter when the budget is tight) and at the end.",
                     min=0)
    max_new_tokens: int = opt(64, "Longest sample answer, in tokens (a loop shows well within it).", min=8, max=1024)
    prompts: str = opt("", "Your own sample prompts instead, one per line.", advanced=True)
    stop_on_alarm: bool = opt(False, "Stop the run at the first degeneration alarm (answers looping, collapsing, "
                                     "empty, running to the limit, or far from the reference) and keep the "
                                     "weights of the last sample step without one.")
    kl_bound: float = opt(1.5, "Alarm when the policy's log-ratio to its reference on its own sample answers "
                               "passes this many nats per token (DPO and PPO runs).", min=0.0, max=100.0,
                          advanced=True)


BACKENDS = ["none", "ddp", "fsdp", "deepspeed-zero2", "deepspeed-zero3"]
SHARDED_BACKENDS = ("fsdp", "deepspeed-zero3")  # each rank holds only a part of the weights


@dataclass
class DistributedConfig:
    """One run on several processes, GPUs or machines, launched by `accelerate launch` with a config file
    written into the run folder (engine.runs.launch); the engine's ranks are in engine.stages.ranks."""

    backend: str = opt("none", "none: one process. ddp: a copy of the model per process, gradients averaged "
                               "(on a machine without GPUs it runs on CPU processes, gloo). fsdp / deepspeed-zero2 / "
                               "deepspeed-zero3: weights, gradients and optimizer state sharded across GPUs, for "
                               "models one GPU cannot hold.", choices=BACKENDS)
    num_processes: int = opt(1, "Processes per machine: one per GPU (on CPU, each takes a share of the cores).",
                             min=1, max=64)
    num_nodes: int = opt(1, "Machines taking part; each runs the launch command with its own node_rank.",
                         min=1, max=1024, advanced=True)
    node_rank: int = opt(0, "This machine's number, 0 to num_nodes - 1; node 0 writes the run folder.",
                         min=0, max=1023, advanced=True)
    main_address: str = opt("127.0.0.1", "Address of node 0, which every machine can reach.", advanced=True)
    main_port: int = opt(29500, "A free TCP port on node 0 where the machines' processes meet (a one-machine run "
                                "takes any free port).", min=1024, max=65535, advanced=True)


SECTIONS: dict[str, type] = {
    "model": ModelConfig, "lora": LoraConfig, "data": DataConfig, "training": TrainingConfig,
    "samples": SamplesConfig, "distributed": DistributedConfig,
}


@dataclass(frozen=True)
class Sampling:
    """How answers are decoded outside training: the Chat tab (engine.inference.chat) and
    `workbench generate`; temperature 0 is greedy, as in evaluation. Not part of a run's config."""

    system: str = opt("", "System prompt for every answer (empty: none, or the template's own).")
    max_new_tokens: int = opt(MAX_NEW_TOKENS, "Most tokens an answer may have.", min=1, max=2048)
    temperature: float = opt(0.0, "Sampling temperature (0: greedy).", min=0.0, max=2.0)
    top_p: float = opt(1.0, "Nucleus sampling: keep the smallest token set with this probability mass.",
                       min=0.05, max=1.0)
    seed: int = opt(0, "Random seed; every answer samples with it.", min=0)


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation of a run (engine.inference.evaluate): `workbench eval RUN` takes these as
    flags and the Evaluate tab as widgets, both generated from the fields. Not part of a run's config."""

    dataset: str | None = opt(None, "Held-out dataset, a registered name (empty: the run's data.eval_dataset).")
    compare: str | None = opt(
        None, "Models whose greedy answers are compared, LABEL=RUN items and base, e.g. "
              "base,sft=latest:sft,dpo=RUN (empty: the base model, the run's parent and the run).")
    reward_run: str | None = opt(
        None, "The reward-model run that scores the answers (empty: the newest one; none: no scores).")
    prompts: int = opt(20, "Held-out prompts each model answers (greedy).", min=1, max=1000)
    max_new_tokens: int = opt(MAX_NEW_TOKENS, "Longest answer, in tokens.", min=1, max=2048)
    pairs: int | None = opt(None, "Held-out pairs for the preference accuracy (empty: all).", min=1, empty="all")
    probes: str | None = opt(None, "Task probes to count, comma-separated (empty: every probe the held-out dataset "
                                   "declares in dataset_info.json).")
    probe: str | None = opt(None, "One more task probe for this evaluation: NAME KIND VALUE, e.g. 'numbered "
                                  "starts_with 1.' (kinds: matches, not_matches, starts_with, contains, not_contains, "
                                  "min_lines, max_lines, max_chars).")
