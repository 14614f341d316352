"""Answers from a causal LM: the one batch generator behind chat, `workbench generate`, evaluation,
the demo and PPO's rollouts.

``generate`` decodes one batch of conversations with engine.config.Sampling's settings (temperature
0 is greedy). Each row may have its own tokenizer (chat's columns keep the chat template each run
trained with) and its own seed: a sampled row draws from its own torch.Generator, so its answer
depends on its model, its prompt and the settings only, not on the rows beside it. A streamer, a
stop event and peft's per-row adapter names pass through to ``generate()``.

It never imports the trainers, so the web UI process may use it for inference.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from engine.config import ConfigError, Sampling
from engine.models.loader import stop_token_ids


def user_turn(prompt: str, system: str | None = None) -> list[dict]:
    """One user turn, after an optional system prompt."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def render_chat(tokenizer, messages: list[dict]) -> str:
    """A conversation in the tokenizer's chat template, ready for the assistant's answer."""
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except ValueError as e:  # transformers refuses a tokenizer without any chat template
        raise ConfigError(f"the tokenizer has no chat template ({e})") from None


def encode(tokenizers: list, conversations: list[list[dict]], device) -> dict:
    """Each conversation rendered with its row's tokenizer, left-padded into one batch (generation
    continues each prompt's last token)."""
    ids = [t(render_chat(t, c), add_special_tokens=False)["input_ids"] for t, c in zip(tokenizers, conversations)]
    width, pad = max(map(len, ids)), tokenizers[0].pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(row)) + row for row in ids], device=device)
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids], device=device)
    return {"input_ids": input_ids, "attention_mask": mask}


class SeededRowSampler(LogitsProcessor):
    """Samples each row from its own generator and leaves only the drawn token, so generate()'s
    greedy step picks it: a row's draws do not depend on the other rows."""

    def __init__(self, seeds: list[int], device):
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids, scores) -> torch.FloatTensor:
        probs = scores.float().softmax(dim=-1)
        drawn = torch.cat([torch.multinomial(probs[row], 1, generator=g) for row, g in enumerate(self.generators)])
        only = torch.full_like(scores, float("-inf"))
        return only.scatter_(1, drawn[:, None], 0.0)


class StopOnEvent(StoppingCriteria):
    """Ends every row at the next step once the event is set (a Stop button)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def _processors(sampling: Sampling, seeds: list[int], device) -> LogitsProcessorList:
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    if sampling.temperature <= 0:
        return LogitsProcessorList()
    warpers = [TemperatureLogitsWarper(sampling.temperature)]
    if sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    return LogitsProcessorList([*warpers, SeededRowSampler(seeds, device)])


@dataclass
class Generation:
    """One decoded batch: the prompt ids and mask, the whole sequences, and per row the answer's
    text, its length (tokens before the turn ended) and whether the turn ended (else it was cut)."""

    prompt: dict
    sequences: torch.Tensor
    texts: list[str]
    lengths: list[int]
    ended: list[bool]

    @property
    def answer_ids(self) -> torch.Tensor:
        return self.sequences[:, self.prompt["input_ids"].shape[1]:]


def generate(lm, tokenizers, conversations: list[list[dict]], sampling: Sampling = Sampling(),
             seeds: list[int] | None = None, adapter_names: list[str] | None = None, streamer=None,
             stop: threading.Event | None = None) -> Generation:
    """Answers to whole conversations (system turn and history included), one batch.

    ``tokenizers``: one for every row, or a list with one per row. ``seeds``: one per row (default:
    sampling.seed for all). ``adapter_names``: peft's mixed-adapter batch, one name per row.
    """
    rows = len(conversations)
    tokenizers = list(tokenizers) if isinstance(tokenizers, (list, tuple)) else [tokenizers] * rows
    stops = stop_token_ids(lm, *tokenizers)
    batch = encode(tokenizers, conversations, lm.device)
    # use_cache: a model in training has it off (gradient checkpointing, TRL), which makes decoding
    # re-read the whole sequence at every token: 3.4x slower for 64 tokens with SmolLM2.
    kwargs = dict(**batch, max_new_tokens=sampling.max_new_tokens, eos_token_id=stops, use_cache=True,
                  pad_token_id=tokenizers[0].pad_token_id, do_sample=False, temperature=None, top_p=None,
                  top_k=None, logits_processor=_processors(sampling, seeds or [sampling.seed] * rows, lm.device))
    if stop is not None:
        kwargs["stopping_criteria"] = StoppingCriteriaList([StopOnEvent(stop)])
    if streamer is not None:
        kwargs["streamer"] = streamer
    if adapter_names is not None:
        kwargs["adapter_names"] = adapter_names
    sequences = lm.generate(**kwargs)
    answers = sequences[:, batch["input_ids"].shape[1]:].tolist()
    lengths = [next((i for i, t in enumerate(row) if t in stops), len(row)) for row in answers]
    texts = [t.decode(row[:n], skip_special_tokens=True).strip() for t, row, n in zip(tokenizers, answers, lengths)]
    return Generation(batch, sequences, texts, lengths, [n < len(row) for row, n in zip(answers, lengths)])


def answer_logprobs(model, sequences: torch.Tensor, attention_mask: torch.Tensor, prompt_len: int,
                    temperature: float = 1.0, output_hidden_states: bool = False):
    """(per-token log-probs of the answer part of left-padded sequences, as generate() returns them,
    under the sampling temperature; the answer positions' logits; the model output). What PPO and
    the training samples read off a generation: generate() itself only samples."""
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # as generate() numbers left-padded rows
    out = model(input_ids=sequences, attention_mask=attention_mask, position_ids=position_ids,
                output_hidden_states=output_hidden_states, use_cache=False)
    logits = out.logits[:, prompt_len - 1:-1].float() / temperature
    answers = sequences[:, prompt_len:]
    return torch.log_softmax(logits, -1).gather(2, answers.unsqueeze(-1)).squeeze(-1), logits, out


@torch.inference_mode()
def answer(lm, tokenizer, conversations: list[list[dict]], sampling: Sampling = Sampling(),
           batch_size: int = 8) -> tuple[list[str], list[int]]:
    """(answers, their lengths in tokens) to many conversations, in batches of ``batch_size``."""
    texts, lengths = [], []
    for start in range(0, len(conversations), batch_size):
        done = generate(lm, tokenizer, conversations[start:start + batch_size], sampling)
        texts += done.texts
        lengths += done.lengths
    return texts, lengths
