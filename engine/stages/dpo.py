"""Direct preference optimisation and its loss family, each on the TRL trainer that implements it.

    sigmoid, ipo, hinge, robust  TRL's DPOTrainer (pref_ftx: its weighted "sft" term)
    dpop                         DPOTrainer + the DPOP term (engine.stages.dpo_losses)
    simpo                        TRL's CPOTrainer, loss "simpo" (pref_ftx: its NLL term, cpo_alpha)
    orpo                         TRL's ORPOTrainer (beta: ORPO's lambda; its NLL term is built in)
    kto                          TRL's KTOTrainer, on unpaired rows (pairs are split into desirable/undesirable rows)

The reference model is the starting point of the run: with ``init_from`` an SFT run, the SFT
model (base + SFT adapter). For LoRA, TRL keeps a frozen copy of the continued adapter as a
"ref" adapter. The DPOTrainer losses score the reference once, before the first step, through an
on-disk cache (engine.stages.reference_cache), so full fine-tuning needs no frozen copy in memory;
KTO scores it as it trains, against a frozen copy we pass. SimPO and ORPO have no reference model.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

from engine import seams
from engine.config import RunConfig
from engine.data.rows import load_splits
from engine.models.loader import load_tokenizer, training_model
from engine.runs.folder import RunFolder
from engine.stages import ranks
from engine.stages.common import train_and_save, trainer_arguments
from engine.stages.reference_cache import cached_reference_logps
from engine.stages.shared_prompt import share_trainer_prompts


def build_trainer(cfg: RunConfig, run: RunFolder, callbacks: list):
    train_ds, eval_ds = load_splits(cfg, preference=True)
    model, base_path = training_model(cfg)
    tokenizer = load_tokenizer(base_path, cfg.model.template)
    args = trainer_arguments(cfg, run, has_eval=eval_ds is not None)
    parts = dict(model=model, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
                 callbacks=callbacks)
    return BUILDERS[cfg.stage_options.loss_type](cfg, args, parts)


def run(cfg: RunConfig, run: RunFolder, callbacks: list) -> Path:
    return train_and_save(build_trainer(cfg, run, callbacks), cfg, run)


def frozen_reference(cfg: RunConfig, model):
    """Full fine-tuning: a frozen copy of the starting model. LoRA: None, TRL uses the adapters."""
    if cfg.model.finetuning_type != "full":
        return None
    return copy.deepcopy(model).eval().requires_grad_(False)


def dpo_family(cfg: RunConfig, args: dict, parts: dict):
    from trl import DPOConfig, DPOTrainer

    from engine.stages.dpo_losses import DPOPTrainer

    seams.score_labelled_positions_only(cfg.training.speedups)
    opts = cfg.stage_options
    # TRL combines weighted losses; its "sft" loss is the chosen answers' mean NLL (pref_ftx).
    if opts.loss_type == "dpop":  # TRL keeps only its "sft" term; DPOPTrainer adds the DPOP term
        losses, weights = ["sft"], [opts.pref_ftx]
    elif opts.pref_ftx:
        losses, weights = [opts.loss_type, "sft"], [1.0, opts.pref_ftx]
    else:
        losses, weights = [opts.loss_type], None
    dpo_args = DPOConfig(**args, beta=opts.beta, label_smoothing=opts.label_smoothing,
                         loss_type=losses, loss_weights=weights, precompute_ref_log_probs=True)
    # No reference model to pass, even for full fine-tuning: TRL scores the reference with the
    # starting model before the first step, so no frozen copy sits in memory while training.
    if opts.loss_type == "dpop":
        dpop = seams.with_loss_term(DPOPTrainer, DPOPTrainer.loss_with_dpop)
        return reference_pass(dpop, cfg.training.speedups)(**parts, args=dpo_args, dpop_lambda=opts.dpop_lambda)
    return reference_pass(DPOTrainer, cfg.training.speedups)(**parts, args=dpo_args)


def reference_pass(trainer_class: type, speedups: bool) -> type:
    """TRL's DPO trainer with the workbench's reference pass. Speed-ups on (README "Performance"): each
    prompt encoded once per pair with no padding between pairs (shared_prompt), and the reference scored
    once through the on-disk cache (reference_cache). Off: TRL's own pass, except on several ranks,
    where TRL's pass cannot run (its arrow file lands in one process's temporary folder) and the ranks
    score in shares, uncached."""
    if speedups and seams.usable("reference_pass"):
        return seams.with_reference_pass(trainer_class, packed_and_cached)
    if ranks.distributed():
        return seams.with_reference_pass(trainer_class, scored_in_shares)
    return trainer_class


def packed_and_cached(trainer, dataset, name: str, batch_size: int, compute):
    # TRL precomputes inside its constructor, always (precompute_ref_log_probs): the packed forward goes
    # in here, before the first forward, and stays for training
    if seams.usable("packed_pairs"):
        share_trainer_prompts(trainer)
    return cached_reference_logps(trainer, dataset, name, compute, batch_size)


def scored_in_shares(trainer, dataset, name: str, batch_size: int, compute):
    return cached_reference_logps(trainer, dataset, name, compute, batch_size, cache=False)


def experimental(module: str):
    """A module of trl.experimental, whose import warns that its API may change: we know, trl is
    pinned and tests/engine/test_dpo_losses.py checks both trainers, so the notice stays out of the log."""
    import importlib

    from trl.import_utils import TRLExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TRLExperimentalWarning)
        return importlib.import_module(f"trl.experimental.{module}")


# CPO and ORPO batches have no "input_ids" for the Trainer to count tokens in (it would warn every
# step), and their collator needs the text columns (they would set remove_unused_columns and warn).
CPO_ORPO_ARGS = dict(include_num_input_tokens_seen=False, remove_unused_columns=False)


def simpo(cfg: RunConfig, args: dict, parts: dict):
    """SimPO: -log sigmoid(beta * (mean log-prob per token, chosen - rejected) - gamma), no reference.
    CPO's NLL term (cpo_alpha, its default 1) is the chosen answers' mean NLL: exactly pref_ftx."""
    cpo = experimental("cpo")
    opts = cfg.stage_options
    cpo_args = cpo.CPOConfig(**{**args, **CPO_ORPO_ARGS}, loss_type="simpo", beta=opts.beta,
                             simpo_gamma=opts.simpo_gamma, cpo_alpha=opts.pref_ftx)
    return cpo.CPOTrainer(**parts, args=cpo_args)


def orpo(cfg: RunConfig, args: dict, parts: dict):
    """ORPO: NLL of the chosen sequence - beta * log sigmoid(log odds ratio of the mean token
    log-probs), no reference. ORPOConfig's beta is the paper's lambda."""
    orpo_module = experimental("orpo")
    orpo_args = orpo_module.ORPOConfig(**{**args, **CPO_ORPO_ARGS}, beta=cfg.stage_options.beta)
    return orpo_module.ORPOTrainer(**parts, args=orpo_args)


def kto(cfg: RunConfig, args: dict, parts: dict):
    from trl import KTOConfig, KTOTrainer

    opts = cfg.stage_options
    seed = cfg.training.seed
    parts = {**parts, "train_dataset": unpaired_mix(parts["train_dataset"], seed),
             "eval_dataset": unpaired_mix(parts["eval_dataset"], seed) if parts["eval_dataset"] else None}
    kto_args = KTOConfig(**args, beta=opts.beta, desirable_weight=opts.kto_desirable_weight,
                         undesirable_weight=opts.kto_undesirable_weight)
    return KTOTrainer(**parts, ref_model=frozen_reference(cfg, parts["model"]), args=kto_args)


def unpaired_mix(rows, seed: int):
    """Unpaired rows (pairs are first split into one desirable (chosen) and one undesirable
    (rejected) row each), shuffled, the two kinds alternating. KTOTrainer reads rows in order (its
    KL baseline pairs each prompt with the answer of the row before it), and unpairing puts every
    chosen row before every rejected one: a batch would hold only one kind, and rewards/margins
    could not be logged. A dataset of unpaired rows (prompt, completion, label) is mixed the same way."""
    from datasets import interleave_datasets
    from trl.data_utils import unpair_preference_dataset

    if "label" not in rows.column_names:
        rows = unpair_preference_dataset(rows)
    desirable = rows.filter(lambda row: row["label"]).shuffle(seed=seed)
    undesirable = rows.filter(lambda row: not row["label"]).shuffle(seed=seed + 1)
    return interleave_datasets([desirable, undesirable])


BUILDERS = {"sigmoid": dpo_family, "ipo": dpo_family, "hinge": dpo_family, "robust": dpo_family,
            "dpop": dpo_family, "simpo": simpo, "orpo": orpo, "kto": kto}
