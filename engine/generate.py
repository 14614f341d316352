"""Chat generation with a base model, optionally with a run's adapter or full model."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.rundir import output_dir, read_config, resolve_run


def load_for_inference(model: str | None = None, run: str | Path | None = None):
    """(model, tokenizer) for a base model name/path, or for a run (its base + its weights)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.models import resolve_model
    from engine.stages.common import base_model_path, compute_dtype

    if run is None:
        path = resolve_model(model)
        weights = None
    else:
        run_dir = resolve_run(str(run))
        weights = output_dir(run_dir)
        if weights is None:
            raise FileNotFoundError(f"run {run_dir.name} has no saved adapter or model yet")
        path = weights if weights.name == "model" else base_model_path(read_config(run_dir))
    dtype = compute_dtype("auto")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # generation continues each prompt's last token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    if weights is not None and weights.name == "adapter":
        lm = PeftModel.from_pretrained(lm, weights).merge_and_unload()  # merged: faster decoding
    return lm.eval(), tokenizer


@torch.inference_mode()
def generate(lm, tokenizer, prompts: list[str], system: str | None = None, max_new_tokens: int = 128,
             temperature: float = 0.0, top_p: float = 1.0, seed: int = 0, batch_size: int = 8) -> list[str]:
    """Answers to user prompts, via the model's chat template. temperature 0 = greedy."""
    answers = []
    for start in range(0, len(prompts), batch_size):
        chats = [([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": p}]
                 for p in prompts[start:start + batch_size]]
        texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(seed)
        sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature > 0 else \
            dict(do_sample=False, temperature=None, top_p=None, top_k=None)
        out = lm.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                          **sampling)
        new_tokens = out[:, batch["input_ids"].shape[1]:]
        answers += [a.strip() for a in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    return answers
