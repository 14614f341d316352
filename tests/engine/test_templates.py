"""Chat templates: each renders turns with generation markers and makes its turn end the eos token."""

from __future__ import annotations

import pytest

from engine.config import ConfigError
from engine.config.templates import TEMPLATES
from engine.models.loader import load_tokenizer

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."}]


def test_model_template_keeps_the_models_own(tiny_model):
    tok = load_tokenizer(tiny_model)  # the tiny model ships ChatML, like SmolLM2
    assert tok.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True) == \
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_chatml_sets_eos_and_masks_only_the_answer(tiny_model):
    tok = load_tokenizer(tiny_model, "chatml")
    assert tok.eos_token == "<|im_end|>"
    out = tok.apply_chat_template(CHAT, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    answer = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(answer) == "Hello.<|im_end|>"


def test_alpaca_uses_the_models_eos(tiny_model):
    tok = load_tokenizer(tiny_model, "alpaca")
    text = tok.apply_chat_template(CHAT, tokenize=False)
    assert text == "Be brief.\n\n### Instruction:\nHi\n\n### Response:\nHello.<|im_end|>\n\n"


def test_template_whose_stop_token_is_missing_is_refused(tiny_model):
    with pytest.raises(ConfigError, match=r"^model.template: llama3 ends turns with <\|eot_id\|>"):
        load_tokenizer(tiny_model, "llama3")


def test_every_template_has_generation_markers():
    assert all("{% generation %}" in template for template, _ in TEMPLATES.values())
