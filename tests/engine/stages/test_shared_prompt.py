"""The shared-prompt packed forward gives TRL's per-token values and gradients, in TRL's layout."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import add_fused_lm_head

from engine.stages import shared_prompt

OUTPUTS = ("log_probs", "entropy", "mean_logits", "is_top1")
PAIRS = [  # prompts and answers of different lengths; one answer of a single token
    {"prompt_ids": [5, 6, 7, 8, 9], "chosen_ids": [10, 11, 12], "rejected_ids": [13, 14]},
    {"prompt_ids": [20, 21], "chosen_ids": [22], "rejected_ids": [23, 24, 25, 26, 27, 28]},
    {"prompt_ids": [30, 31, 32, 33, 34, 35, 36, 37], "chosen_ids": [38, 39, 40, 41], "rejected_ids": [42]},
    {"prompt_ids": [50], "chosen_ids": [51, 52], "rejected_ids": [53, 54]},
    {"prompt_ids": [60], "chosen_ids": [61], "rejected_ids": [62]},
]


def tiny_llama(attention: str):
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.config._attn_implementation = attention
    add_fused_lm_head(model, outputs=OUTPUTS)
    return model


def trl_batch(pairs: list[dict]) -> dict:
    batch = DataCollatorForPreference(pad_token_id=0)(pairs)
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels}


def score(model, batch):
    model.zero_grad()
    output = model(**batch, fused_lm_head=True, use_cache=False)
    output.log_probs.sum().backward()
    return output, {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_scores_equal_trl_rows_with_gradients(attention):
    trl_model = tiny_llama(attention)
    packed_model = copy.deepcopy(trl_model)
    assert shared_prompt.share_prompts(packed_model)
    batch = trl_batch(PAIRS)
    expected, expected_grads = score(trl_model, batch)
    got, grads = score(packed_model, batch)
    for name in OUTPUTS:
        assert getattr(got, name).shape == getattr(expected, name).shape
        torch.testing.assert_close(getattr(got, name).float(), getattr(expected, name).float(), atol=2e-5, rtol=1e-4)
    for name, grad in expected_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-4)


def test_pairs_pack_into_rows_no_wider_than_the_longest_pair():
    pairs = shared_prompt.pairs_of(**{k: v for k, v in trl_batch(PAIRS).items() if k != "attention_mask"})
    assert [(len(p.prompt), len(p.chosen), len(p.rejected)) for p in pairs] == [
        (5, 3, 2), (2, 1, 6), (8, 4, 1), (1, 2, 2), (1, 1, 1)]
    assert [[pair.length for pair in row] for row in shared_prompt.bins(pairs)] == [[14], [11], [10, 4], [6]]
    packed = shared_prompt.pack(pairs, trl_batch(PAIRS)["input_ids"].shape, pad_id=0)
    assert packed.input_ids.shape == (4, 14)  # 14 = 8 + 4 + 1 + 1; TRL's batch is 10 rows of 12
    # the second pair: prompt, chosen, the prompt's last token again, rejected; positions restart
    segment = shared_prompt.segment(pairs[1], 0)
    assert segment[0] == [20, 21, 22, 21, 23, 24, 25, 26, 27, 28]
    assert segment[1] == [0, 1, 2, 1, 2, 3, 4, 5, 6, 7]
    assert segment[2] == [-100, 22, -100, 23, 24, 25, 26, 27, 28, -100]


def test_batches_that_are_not_shared_prompt_pairs_take_trls_forward():
    odd = trl_batch(PAIRS)
    different = {k: v.clone() for k, v in odd.items()}
    different["input_ids"][len(PAIRS), 0] = 3  # a rejected row whose prompt differs from its chosen row's
    assert shared_prompt.pairs_of(different["input_ids"], different["labels"]) is None
    assert shared_prompt.pairs_of(odd["input_ids"][:3], odd["labels"][:3]) is None
    no_answer = odd["labels"].clone()
    no_answer[0] = -100
    assert shared_prompt.pairs_of(odd["input_ids"], no_answer) is None
    model = tiny_llama("sdpa")
    packed_model = copy.deepcopy(model)
    shared_prompt.share_prompts(packed_model)
    expected, _ = score(model, different)
    got, _ = score(packed_model, different)
    torch.testing.assert_close(got.log_probs, expected.log_probs)


def test_other_families_and_kernels_keep_trls_forward():
    model = tiny_llama("flash_attention_2")
    assert not shared_prompt.share_prompts(model)
    model.config._attn_implementation = "sdpa"
    model.config.model_type = "bloom"
    assert not shared_prompt.share_prompts(model)
