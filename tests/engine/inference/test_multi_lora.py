"""Packed multi-LoRA decoding on the tiny model: each chat column answers exactly as its model
decoded alone, whatever adapters share the batch (other ranks, other target modules, in any order),
and adapters that cannot pack keep peft's mixed batch with the same answers."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import torch

from engine.inference import chat
from engine.inference.chat import BASE_KEY, Sampling, stream_chat
from engine.inference.generate import answer, user_turn
from engine.inference.multi_lora import ROWS_ATTR, adapters_per_row, pack
from engine.models.loader import causal_lm, inference_model, with_adapters
from engine.runs.folder import RunFolder
from tests.helpers import make_weight_run

PROMPT = "Table users(id, name, age). Names of users over 30."
GREEDY = Sampling(max_new_tokens=12)


@pytest.fixture(scope="module")
def runs(saves, tiny_model, tmp_path_factory) -> dict[str, RunFolder]:
    """LoRA runs of several shapes on the tiny model, in their own runs root (passed by path)."""
    root = tmp_path_factory.mktemp("multi-lora-runs")
    return {
        "r4": make_weight_run(root, tiny_model, seed=11),
        "r8_attention": make_weight_run(root, tiny_model, seed=12, r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"]),
        "r2_mlp": make_weight_run(root, tiny_model, seed=13, r=2, lora_alpha=2,
                                  target_modules=["gate_proj", "up_proj", "down_proj"]),
        "rslora": make_weight_run(root, tiny_model, seed=14, r=16, lora_alpha=8, use_rslora=True),
        "bias": make_weight_run(root, tiny_model, seed=15, lora_bias=True),  # B with a bias: does not pack
    }


@pytest.fixture(scope="module")
def alone(runs, tiny_model):
    """A column's greedy answer from its model decoded alone, adapter merged (another code path;
    peft cannot merge a LoRA bias into a linear without one: that adapter stays a PeftModel's)."""
    @cache
    def decode(name: str) -> str:
        lm, tokenizer = inference_model(str(tiny_model), None if name in (BASE_KEY, "bias") else runs[name].path)
        if name == "bias":
            lm = with_adapters(lm, {name: runs[name].adapter_dir}).eval()
        return answer(lm, tokenizer, [user_turn(PROMPT)], GREEDY)[0][0]
    return decode


def final(tiny_model: Path, runs: dict, names: list[str], sampling: Sampling = GREEDY) -> list[str]:
    keys = [n if n == BASE_KEY else str(runs[n].path) for n in names]
    *_, last = stream_chat(str(tiny_model), keys, PROMPT, sampling)
    return [a.text for a in last]


def packed_in_chat() -> bool:
    from peft.tuners.lora import LoraLayer

    shared = chat._cache.shared
    return hasattr(shared, ROWS_ATTR) and not any(isinstance(m, LoraLayer) for m in shared.modules())


@pytest.mark.parametrize("names", [
    [BASE_KEY],
    ["r4"],
    [BASE_KEY, "r4"],
    ["r4", "r8_attention"],  # two different LoRAs, no base row
    [BASE_KEY, "r8_attention", "r2_mlp", "rslora"],  # ranks 8/2/16, attention-only, MLP-only, rsLoRA scaling
    ["r2_mlp", BASE_KEY, "r4"],
])
def test_greedy_columns_match_each_model_alone(runs, tiny_model, alone, names):
    assert final(tiny_model, runs, names) == [alone(n) for n in names]
    if names != [BASE_KEY]:
        assert packed_in_chat()  # the packed path answered, not peft's mixed batch


def test_the_columns_really_differ(runs, alone):
    names = [BASE_KEY, "r4", "r8_attention", "r2_mlp", "rslora"]
    assert len({alone(n) for n in names}) == len(names)  # so a row taking another row's adapter would show


def test_an_adapter_that_cannot_pack_keeps_peft_mixed_batch(runs, tiny_model, alone):
    names = [BASE_KEY, "bias", "r4"]
    assert len({alone(n) for n in names}) == len(names)
    assert final(tiny_model, runs, names) == [alone(n) for n in names]
    assert not packed_in_chat()


def test_seeded_sampling_does_not_depend_on_the_other_columns(runs, tiny_model):
    sampling = Sampling(max_new_tokens=10, temperature=1.0, top_p=0.9, seed=5)
    batches = [["r8_attention"], [BASE_KEY, "r8_attention"], ["r2_mlp", "r4", "r8_attention", BASE_KEY]]
    seen = {}
    for names in batches:
        for name, text in zip(names, final(tiny_model, runs, names, sampling)):
            seen.setdefault(name, set()).add(text)
    assert all(len(texts) == 1 for texts in seen.values()), seen
    assert len({next(iter(texts)) for texts in seen.values()}) == len(seen)  # the columns' models differ


def test_packed_rows_give_each_adapters_logits(runs, tiny_model):
    """At the model level: rows in any order, an adapter on several rows, the base on one."""
    adapters = {"a": runs["r4"].adapter_dir, "b": runs["r8_attention"].adapter_dir}
    reference = with_adapters(causal_lm(tiny_model), adapters).eval()
    packed = pack(with_adapters(causal_lm(tiny_model), adapters).eval(), ["a", "b"])
    ids = torch.randint(3, 200, (4, 9), generator=torch.Generator().manual_seed(0))
    order = ["b", "__base__", "a", "b"]
    with torch.inference_mode():
        with adapters_per_row(packed, order) as peft_names:
            assert peft_names is None  # nothing for peft to do: the packed layers read the rows
            got = packed(input_ids=ids).logits
        for row, name in enumerate(order):
            if name == "__base__":
                with reference.disable_adapter():
                    want = reference(input_ids=ids[row:row + 1]).logits
            else:
                reference.set_adapter(name)
                want = reference(input_ids=ids[row:row + 1]).logits
            torch.testing.assert_close(got[row:row + 1], want, rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError, match="no adapter named c"):
            with adapters_per_row(packed, ["a", "c"]):
                pass
        with pytest.raises(RuntimeError, match="adapters_per_row"):
            packed(input_ids=ids)  # outside a block no row has an adapter: refused, not guessed
