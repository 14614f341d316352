"""Direct preference optimisation (TRL's DPOTrainer).

The reference model is the starting point of the run: with ``init_from`` an SFT run, the SFT
model (base + SFT adapter). For LoRA, TRL keeps a frozen copy of the continued adapter as a
"ref" adapter; for full fine-tuning we pass a frozen copy of the starting model explicitly.
"""

from __future__ import annotations

import copy
from pathlib import Path

from engine.config import RunConfig
from engine.models import load_tokenizer
from engine.stages.common import load_splits, load_start_model, train_and_save, trainer_arguments


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list):
    from trl import DPOConfig, DPOTrainer

    train_ds, eval_ds = load_splits(cfg, preference=True)
    model, base_path = load_start_model(cfg)
    tokenizer = load_tokenizer(base_path, cfg.model.template)
    ref_model = None
    if cfg.model.finetuning_type == "full":
        ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    opts = cfg.stage_options
    args = DPOConfig(
        **trainer_arguments(cfg, run_dir, has_eval=eval_ds is not None),
        beta=opts.beta, label_smoothing=opts.label_smoothing,
        # TRL combines weighted losses; its "sft" loss is the chosen answers' mean NLL (pref_ftx).
        loss_type=[opts.loss_type, "sft"] if opts.pref_ftx else [opts.loss_type],
        loss_weights=[1.0, opts.pref_ftx] if opts.pref_ftx else None,
    )
    return DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=train_ds,
                      eval_dataset=eval_ds, processing_class=tokenizer, callbacks=callbacks)


def run(cfg: RunConfig, run_dir: Path, callbacks: list) -> Path:
    return train_and_save(build_trainer(cfg, run_dir, callbacks), cfg, run_dir)
