"""Reward models: building one to train (engine.stages.rm), loading a finished RM run, scoring.

An RM run stands on the base model (or, with ``init_from`` an SFT run, the base with that run's
adapter merged in) plus its own adapter, which also holds the trained ``score`` head. PPO
(engine.stages.ppo_math) and evaluation (engine.inference.evaluate) load it here, so both score exactly as it trained.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.config import RunConfig, reward_model_stages
from engine.models.loader import base_model_path, compute_dtype, finished_run, parent_run, run_weights
from engine.runs.folder import output_dir, read_config


def load_scoring_backbone(cfg: RunConfig):
    """(sequence-classification model with one output, base path) for an RM config: the base,
    with a LoRA parent's adapter merged in. The score head is new (randomly initialised)."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForSequenceClassification

    from engine.stages.common import check_same_model, quantization

    parent = parent_run(cfg)
    if parent is not None:
        check_same_model(cfg, parent)
    base_path = base_model_path(cfg)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_path, num_labels=1, dtype=compute_dtype(cfg.model.dtype), quantization_config=quantization(cfg))
    parent_out = output_dir(parent) if parent is not None else None
    if parent_out is not None and parent_out.name == "adapter":
        # The SFT adapter was trained on the causal LM; the backbone's module names are the same, so
        # it applies as a task-less adapter.
        sft = PeftConfig.from_pretrained(parent_out)
        sft.task_type = None
        model = PeftModel.from_pretrained(model, parent_out, config=sft).merge_and_unload()
    return model, base_path


def reward_run(run: str | Path, arg: str = "reward model") -> Path:
    """The folder of a finished reward-model run; the error names ``arg`` and what was given instead."""
    return finished_run(arg, run, reward_model_stages(), "a reward model run")


def load_reward_model(run: str | Path, device: str | None = None):
    """(frozen reward model, its tokenizer) from a finished RM run, adapter merged for speed."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run_dir = reward_run(run)
    weights = run_weights(run_dir)
    if weights.name == "model":
        model = AutoModelForSequenceClassification.from_pretrained(weights, dtype=compute_dtype())
    else:
        model, _ = load_scoring_backbone(read_config(run_dir))
        model = PeftModel.from_pretrained(model, weights).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(weights)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval().requires_grad_(False), tokenizer


def conversation_texts(tokenizer, prompts: list[list[dict]], answers: list[str]) -> list[str]:
    """prompt turns + the answer as an assistant turn, rendered the way the RM trainer renders
    its chosen/rejected conversations."""
    return [tokenizer.apply_chat_template(p + [{"role": "assistant", "content": a}], tokenize=False)
            for p, a in zip(prompts, answers, strict=True)]


@torch.inference_mode()
def score(model, tokenizer, prompts: list[list[dict]], answers: list[str], batch_size: int = 16,
          max_length: int | None = None) -> list[float]:
    """The reward model's score for each (prompt turns, answer)."""
    texts = conversation_texts(tokenizer, prompts, answers)
    tokenizer.padding_side = "right"
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False, truncation=max_length is not None,
                          max_length=max_length).to(model.device)
        scores += model(**batch).logits[:, 0].float().tolist()
    return scores
