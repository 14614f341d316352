"""Inference on a base model or a run's weights: loading, prompt rendering, batch answers.

Shared by `workbench generate`, the demo, the Chat tab (engine.inference.chat) and export (engine.models.export).
It never imports the trainers (engine.stages), so the web UI process may use it for inference.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.config import ConfigError
from engine.models.loader import compute_dtype, run_base_model, run_weights
from engine.models.store import resolve_model
from engine.runs.folder import resolve_run


def inference_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare_tokenizer(tokenizer):
    """Left padding (generation continues each prompt's last token) and a pad token."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_tokenizer(model_path: Path, template: str = "model"):
    """A base model's tokenizer with a chat template (engine.models.load_tokenizer applies it)."""
    from engine.models import store as models

    if hasattr(models, "load_tokenizer"):
        return prepare_tokenizer(models.load_tokenizer(model_path, template))
    from transformers import AutoTokenizer

    return prepare_tokenizer(AutoTokenizer.from_pretrained(model_path))


def load_run_tokenizer(weights: Path):
    """The tokenizer the engine saved beside the run's weights: it carries the chat template (and
    turn-end eos token) the run trained with."""
    from transformers import AutoTokenizer

    return prepare_tokenizer(AutoTokenizer.from_pretrained(weights))


def stop_token_ids(lm, *tokenizers) -> list[int]:
    """Every id that ends a turn: the model's generation eos ids plus each tokenizer's eos (a chat
    template may end turns with its own token, e.g. <|im_end|>)."""
    ids = lm.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    for tokenizer in tokenizers:
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
            ids.append(tokenizer.eos_token_id)
    return ids


def load_for_inference(model: str | None = None, run: str | Path | None = None):
    """(model, tokenizer) for a base model name/path, or for a run (its base + its weights)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if run is None:
        path = resolve_model(model)
        weights, tokenizer = None, load_base_tokenizer(path)
    else:
        run_dir = resolve_run(str(run))
        weights = run_weights(run_dir)
        path = weights if weights.name == "model" else run_base_model(run_dir)
        tokenizer = load_run_tokenizer(weights)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=compute_dtype())
    if weights is not None and weights.name == "adapter":
        lm = PeftModel.from_pretrained(lm, weights).merge_and_unload()  # merged: faster decoding
    return lm.to(inference_device()).eval(), tokenizer


def user_turn(prompt: str, system: str | None = None) -> list[dict]:
    """One user turn, after an optional system prompt."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def render_chat(tokenizer, messages: list[dict]) -> str:
    """A conversation in the tokenizer's chat template, ready for the assistant's answer."""
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except ValueError as e:  # transformers refuses a tokenizer without any chat template
        raise ConfigError(f"the tokenizer has no chat template ({e})") from None


def render_prompt(tokenizer, prompt: str, system: str | None = None) -> str:
    """One user turn (after an optional system prompt) in the tokenizer's chat template."""
    return render_chat(tokenizer, user_turn(prompt, system))


@torch.inference_mode()
def answer_conversations(lm, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 128,
                         temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
                         batch_size: int = 8) -> tuple[list[str], list[int]]:
    """Answers to whole conversations (system turn and history included), temperature 0 = greedy,
    and each answer's length: the tokens generated before the turn ended."""
    prepare_tokenizer(tokenizer)
    stops = stop_token_ids(lm, tokenizer)
    answers, lengths = [], []
    for start in range(0, len(conversations), batch_size):
        texts = [render_chat(tokenizer, c) for c in conversations[start:start + batch_size]]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(lm.device)
        torch.manual_seed(seed)
        sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature > 0 else \
            dict(do_sample=False, temperature=None, top_p=None, top_k=None)
        out = lm.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                          eos_token_id=stops, **sampling)
        new_tokens = out[:, batch["input_ids"].shape[1]:]
        answers += [a.strip() for a in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
        lengths += [next((i for i, t in enumerate(row) if t in stops), len(row)) for row in new_tokens.tolist()]
    return answers, lengths


def generate(lm, tokenizer, prompts: list[str], system: str | None = None, **settings) -> list[str]:
    """Answers to user prompts (settings: those of answer_conversations)."""
    return answer_conversations(lm, tokenizer, [user_turn(p, system) for p in prompts], **settings)[0]
