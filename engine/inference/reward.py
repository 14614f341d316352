"""Scoring answers with a reward model (engine.models.loader.reward_model loads a finished RM run):
PPO's rollouts and evaluation's answers are rendered exactly as the reward model's training pairs
were, so both score as it trained.
"""

from __future__ import annotations

import torch


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
