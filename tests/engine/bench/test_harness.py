"""The bench's plan, without training: which systems run, in which order, and the recipe they share."""

from __future__ import annotations

from engine.bench.harness import make_recipe, schedule, systems
from engine.bench.recipe import run_config
from engine.bench.report import WARM

BF16_CPU = {"bf16_flags": ["avx512_bf16"]}
PLAIN_CPU = {"bf16_flags": []}


def names(specs: list[dict]) -> list[str]:
    return [spec["name"] for spec in specs]


def test_dpo_tries_each_trl_setting_that_can_be_fastest_here():
    assert names(systems("dpo", machine=BF16_CPU)) == [
        "workbench", WARM, "trl/float32", "trl/float32+precompute", "trl/bfloat16", "trl/bfloat16+precompute"]
    # without bf16 instructions a CPU emulates bf16, far slower: not worth a run
    assert names(systems("dpo", machine=PLAIN_CPU)) == ["workbench", WARM, "trl/float32", "trl/float32+precompute"]


def test_pinned_trl_settings_run_alone():
    specs = systems("dpo", dtype="bfloat16", trl_dtype="float32", trl_precompute="off", machine=BF16_CPU)
    assert names(specs) == ["workbench", WARM, "trl/float32"]
    assert specs[0]["dtype"] == specs[1]["dtype"] == "bfloat16" and specs[1]["warm_reference"]
    assert specs[2] == {"name": "trl/float32", "system": "trl", "dtype": "float32", "precompute": False}


def test_sft_has_no_reference_to_precompute():
    assert names(systems("sft", machine=BF16_CPU)) == ["workbench", "trl/float32", "trl/bfloat16"]


def test_chat_compares_the_side_by_side_path_with_plain_generate():
    specs = systems("chat", runs=["/runs/a"])
    assert names(specs) == ["workbench", "generate"] and specs[0]["runs"] == ["/runs/a"]


def test_rounds_alternate_so_no_system_always_goes_first():
    specs = [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    assert names(schedule(specs, 3)) == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]


def test_the_recipe_is_one_epoch_of_exactly_the_steps_on_the_shipped_data(tiny_model):
    recipe = make_recipe("dpo", str(tiny_model), steps=3)
    assert (recipe.dataset, recipe.batch_size, recipe.cutoff_len, recipe.learning_rate) == ("sql_dpo", 4, 256, 5e-5)
    cfg = run_config(recipe)
    assert cfg.data.max_samples == 12 and cfg.training.max_steps == 3 and cfg.samples.count == 0
    assert cfg.training.gradient_accumulation_steps == 1 and not cfg.training.gradient_checkpointing
    assert (cfg.lora.rank, cfg.lora.alpha, cfg.lora.target) == (8, 16, "all-linear")
    assert make_recipe("sft", str(tiny_model)).batch_size == 8


def test_on_a_gpu_trl_runs_in_the_gpus_half_precision():
    gpu = {"bf16_flags": ["amx_bf16"], "gpu_dtype": "bfloat16"}
    assert names(systems("dpo", machine=gpu)) == ["workbench", WARM, "trl/bfloat16", "trl/bfloat16+precompute"]
