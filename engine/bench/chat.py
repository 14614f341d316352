"""Chat throughput: the Chat tab's side-by-side path against plain ``model.generate`` at the same batch.

workbench  engine.inference.chat.stream_chat with the base and 1 or 3 LoRA runs as columns (one
           shared base, peft's mixed-adapter batch, streamed), models loaded before the clock starts
generate   the base model alone, ``model.generate`` greedy on a batch of as many copies of the prompt

A column's tokens/s is the batch's decoding rate: the longest answer's tokens over the wall time of
the whole answer (prompt included), since every column of a batch decodes in lockstep. The plain
batch always decodes the full length (``min_new_tokens``); a chat answer may end earlier, which the
reported token counts show. Without runs given, the columns are throwaway random LoRA adapters.
"""

from __future__ import annotations

import time
from pathlib import Path

from engine.bench.measure import peak_memory
from engine.bench.recipe import CHAT_COLUMNS, CHAT_PROMPT, Recipe


def throwaway_runs(model: str, count: int, root: Path) -> list[str]:
    """``count`` completed LoRA run folders under ``root`` with random adapters (r8/alpha16, all linear
    layers, B != 0 so they change the answers) on ``model``, made directly with peft."""
    import torch
    from peft import LoraConfig, get_peft_model

    from engine.config import from_dict
    from engine.models.loader import causal_lm, load_tokenizer
    from engine.runs.folder import create_run
    from engine.runs.status import State

    folders = []
    for i in range(count):
        run = create_run(from_dict({"stage": "sft", "name": f"bench-adapter{i}", "model": {"name_or_path": model}}),
                         root=root)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(i)
            shape = run.config().lora  # the workbench's default LoRA, as a real run would have it
            lm = get_peft_model(causal_lm(model), LoraConfig(r=shape.rank, lora_alpha=shape.alpha,
                                                             target_modules=shape.target, init_lora_weights=False,
                                                             task_type="CAUSAL_LM"))
        lm.save_pretrained(run.adapter_dir)
        load_tokenizer(model).save_pretrained(run.adapter_dir)  # chat reads each run's own template
        run.update_status(state=State.COMPLETED, step=1, max_steps=1)
        folders.append(str(run.path))
    return folders


def side_by_side(recipe: Recipe, runs: list[str]) -> dict:
    """Per column count: the chat path's decoding rate per column, the answers' lengths, the first token."""
    from engine.config import Sampling
    from engine.inference.chat import BASE_KEY, stream_chat

    measured = {}
    for columns in CHAT_COLUMNS:
        keys = [BASE_KEY, *runs[:columns - 1]]
        sampling = Sampling(max_new_tokens=recipe.steps)
        for _ in stream_chat(recipe.model, keys, CHAT_PROMPT, sampling):
            pass  # loads this set of models (chat keeps them loaded) and warms the kernels and the allocator
        start, first = time.perf_counter(), None
        for answers in stream_chat(recipe.model, keys, CHAT_PROMPT, sampling):
            if first is None and any(a.tokens for a in answers):
                first = time.perf_counter() - start
        seconds = time.perf_counter() - start
        measured[str(columns)] = rate(columns, [a.tokens for a in answers], seconds, first)
    return measured


def plain_generate(recipe: Recipe) -> dict:
    """Per batch size: the base model's ``generate`` on copies of the prompt, in chat's dtype and device."""
    import torch

    from engine.inference.generate import render_chat, user_turn
    from engine.models.loader import causal_lm, compute_dtype, inference_device, load_tokenizer

    lm = causal_lm(recipe.model, compute_dtype()).to(inference_device()).eval()
    tokenizer = load_tokenizer(recipe.model)
    prompt = tokenizer(render_chat(tokenizer, user_turn(CHAT_PROMPT)), add_special_tokens=False,
                       return_tensors="pt")["input_ids"].to(lm.device)
    measured = {}
    for columns in CHAT_COLUMNS:
        batch = prompt.repeat(columns, 1)
        settings = dict(input_ids=batch, attention_mask=torch.ones_like(batch), do_sample=False, temperature=None,
                        top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id, use_cache=True)
        with torch.inference_mode():
            length = dict(max_new_tokens=recipe.steps, min_new_tokens=recipe.steps)
            lm.generate(**settings, **length)  # the same warm-up as chat's first call
            start = time.perf_counter()
            out = lm.generate(**settings, **length)
            seconds = time.perf_counter() - start
        measured[str(columns)] = rate(columns, [out.shape[1] - batch.shape[1]] * columns, seconds, None)
    return measured


def rate(columns: int, tokens: list[int], seconds: float, first: float | None) -> dict:
    return {"columns": columns, "tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_second": round(max(tokens) / seconds, 2) if seconds > 0 else 0.0,
            "first_token_seconds": round(first, 3) if first is not None else None}


def measure_chat(spec: dict) -> dict:
    recipe = Recipe(**spec["recipe"])
    measured = side_by_side(recipe, spec["runs"]) if spec["system"] == "workbench" else plain_generate(recipe)
    return {"columns": measured, **peak_memory()}
