"""Did alignment work? Two held-out measurements, saved as eval.json in the evaluated run's folder.

1. Preference accuracy on held-out pairs. An RM run scores the chosen and the rejected answer;
   a DPO run (any loss type) gets DPO's implicit reward beta * (log pi(y|x) - log pi_ref(y|x)),
   summed over the answer tokens, with pi its weights and pi_ref its parent run's (or the base
   model when it has none). Accuracy = fraction of pairs with chosen > rejected.
2. A generation comparison: held-out prompts answered greedily by several models (base, SFT, DPO,
   PPO ...), every answer scored by a reward model (an RM run), and per model: mean RM score, win
   rate against the SFT model's answers (ties count half), task probe fractions, mean length.

Light at import (torch and the libraries are imported inside the functions that load models), so
the web UI may import it for the file format and table rows.

`python -m engine.evaluate RUN ...` is `workbench eval RUN ...`.
"""

from __future__ import annotations

import gc
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from engine import demo
from engine.config import ConfigError, RunConfig
from engine.rundir import atomic_write, output_dir, read_config, resolve_run

EVAL_FILE = "eval.json"
DEFAULT_PROMPTS = 20
DEFAULT_MAX_NEW_TOKENS = 96
BASELINE = "sft"  # win rates are against this model's answers
PREFERENCE_STAGES = ("dpo", "rm")
POLICY_STAGES = ("dpo", "ppo")
# Task probes by name: answer -> bool; each model's row reports the fraction of answers passing.
# The sample SQL task's come from engine.demo; register_probe adds a task's own.
PROBES: dict[str, Callable[[str], bool]] = dict(demo.PROBES)
Progress = Callable[[str], None]


def register_probe(name: str, probe: Callable[[str], bool]) -> None:
    PROBES[name] = probe


def _quiet(_message: str) -> None:
    pass


# ---- arguments: checked before any model loads, each error names the argument to fix ----

def _run(arg: str, name: str) -> Path:
    try:
        return resolve_run(str(name))
    except FileNotFoundError as e:
        raise ConfigError(f"{arg}: {e}") from None


def _stage(run_dir: Path) -> str:
    return read_config(run_dir).stage


def _with_weights(arg: str, run_dir: Path) -> Path:
    if output_dir(run_dir) is None:
        raise ConfigError(f"{arg}: run {run_dir.name} has no saved adapter or model yet; pick a finished run")
    return run_dir


def check_reward_run(name: str | None, run_dir: Path, cfg: RunConfig, notes: list[str]) -> Path | None:
    """The RM run that scores answers: the one named, else the evaluated run when it is an RM
    run, else the newest completed RM run; None (with a note) when there is none or 'none'."""
    if name is not None and name.lower() == "none":
        notes.append("RM scores and win rates skipped: --reward-run none")
        return None
    if name is None and cfg.stage == "rm":
        return _with_weights("--reward-run", run_dir)
    try:
        rm = _run("--reward-run", name or "latest:rm")
    except ConfigError:
        if name:
            raise
        notes.append("RM scores and win rates skipped: no completed rm run (train one or pass --reward-run)")
        return None
    if _stage(rm) != "rm":
        raise ConfigError(f"--reward-run: run {rm.name} is a {_stage(rm)} run; pick an rm run")
    return _with_weights("--reward-run", rm)


def parse_compare(text: str) -> dict[str, Path | None]:
    """'base,sft=RUN,dpo=RUN' -> {label: run folder, base: None}."""
    models: dict[str, Path | None] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        label, sep, name = (s.strip() for s in item.partition("="))
        if label in models:
            raise ConfigError(f"--compare: label {label!r} appears twice; give each model its own label")
        if not sep and label == "base":
            models[label] = None
        elif not sep or not label or not name:
            raise ConfigError(f"--compare: {item!r} should be LABEL=RUN (e.g. sft=latest:sft) or base")
        else:
            run = _with_weights("--compare", _run("--compare", name))
            if _stage(run) == "rm":
                raise ConfigError(f"--compare: run {run.name} is an rm run (it writes no answers); "
                                  "pick sft, dpo or ppo runs")
            models[label] = run
    return models


def default_models(run_dir: Path, cfg: RunConfig) -> dict[str, Path | None]:
    """What a run is compared with: a DPO/PPO run with the base and its parent (labelled by the
    parent's stage), an SFT run with the base; an RM run writes no answers."""
    if cfg.stage == "rm":
        return {}
    models: dict[str, Path | None] = {"base": None}
    if cfg.stage in POLICY_STAGES and cfg.init_from:
        from engine.weights import parent_run

        parent = parent_run(cfg)
        models[_stage(parent) if _stage(parent) != cfg.stage else "parent"] = parent
    models[cfg.stage] = run_dir
    return models


def dataset_dir(cfg: RunConfig) -> Path:
    """The run's dataset folder; a relative one is the engine's, relative to the repository."""
    from engine.launch import REPO_ROOT

    path = Path(cfg.data.dataset_dir)
    return path if path.is_absolute() else REPO_ROOT / path


def held_out(run_dir: Path, cfg: RunConfig, dataset: str | None) -> tuple[str, dict]:
    """(dataset name, its registry entry): the one named, else the run's data.eval_dataset."""
    from engine.registry import DatasetError, read_registry

    name = dataset or cfg.data.eval_dataset
    if not name:
        raise ConfigError(f"--dataset: run {run_dir.name} has no data.eval_dataset; name a registered "
                          "held-out dataset, e.g. --dataset sql_dpo_eval")
    try:
        registry = read_registry(dataset_dir(cfg))
    except DatasetError as e:
        raise ConfigError(f"--dataset: {e}") from None
    if name not in registry:
        raise ConfigError(f"--dataset: {name!r} is not registered in {dataset_dir(cfg)}; "
                          f"registered: {', '.join(sorted(registry)) or 'none'}")
    return name, registry[name]


# ---- preference accuracy ----

def tokenize_pair(tokenizer, prompt: list[dict], answer: str, max_length: int | None = None) -> tuple[list[int], int]:
    """(token ids, prompt length) as TRL's DPO trainer tokenises a conversational pair: the prompt
    with the generation prompt, the whole conversation, the answer from where the two diverge;
    truncated to max_length keeping the start."""
    prompt_ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True,
                                               return_dict=True)["input_ids"]
    ids = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": answer}], tokenize=True,
                                        return_dict=True)["input_ids"]
    n = 0
    while n < min(len(prompt_ids), len(ids)) and prompt_ids[n] == ids[n]:
        n += 1
    return (ids[:max_length] if max_length else ids), n


def answer_logps(lm, tokenizer, prompts: list[list[dict]], answers: list[str], max_length: int | None = None,
                 batch_size: int = 4) -> list[float]:
    """log p(answer | prompt) under a causal LM, summed over the answer tokens."""
    import torch

    seqs = [tokenize_pair(tokenizer, p, a, max_length) for p, a in zip(prompts, answers, strict=True)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(seqs), batch_size):
            chunk = seqs[start:start + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.tensor([s + [pad] * (width - len(s)) for s, _ in chunk], device=lm.device)
            attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s, _ in chunk], device=lm.device)
            answer = torch.tensor([[0] * n + [1] * (len(s) - n) + [0] * (width - len(s)) for s, n in chunk],
                                  device=lm.device)
            logits = lm(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
            token_logps = logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            out += (token_logps * answer[:, 1:]).sum(-1).tolist()
    return out


def summarise_pairs(chosen: list[float], rejected: list[float]) -> dict:
    n = len(chosen)
    return {"pairs": n, "accuracy": sum(c > r for c, r in zip(chosen, rejected)) / n,
            "margin": sum(c - r for c, r in zip(chosen, rejected)) / n,
            "chosen": sum(chosen) / n, "rejected": sum(rejected) / n,
            "pair_scores": [[c, r] for c, r in zip(chosen, rejected)]}


def rm_preference(run_dir: Path, pairs: list[dict]) -> dict:
    """The RM run's scores of the chosen and the rejected answers."""
    from engine.reward import load_reward_model, score

    model, tokenizer = load_reward_model(run_dir)
    prompts = [p["prompt"] for p in pairs]
    chosen = score(model, tokenizer, prompts, [p["chosen"][0]["content"] for p in pairs])
    rejected = score(model, tokenizer, prompts, [p["rejected"][0]["content"] for p in pairs])
    del model
    gc.collect()
    return {"kind": "rm", "model": run_dir.name, "beta": None, "reference": None,
            **summarise_pairs(chosen, rejected)}


def load_reference(cfg: RunConfig):
    """(DPO's reference model, its label): the parent run's weights, or the base model."""
    from engine.weights import base_model_path, compute_dtype, parent_run

    parent = parent_run(cfg)
    if parent is not None:
        from engine.generate import load_for_inference

        return load_for_inference(run=parent)[0], parent.name
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(base_model_path(cfg), dtype=compute_dtype())
    return lm.eval(), "base"


def dpo_preference(run_dir: Path, cfg: RunConfig, pairs: list[dict]) -> dict:
    """DPO's implicit rewards beta * (log pi - log pi_ref) of the chosen and rejected answers, with
    the run's own tokenizer (its chat template) for both models."""
    from engine.generate import load_for_inference

    prompts = [p["prompt"] for p in pairs]
    texts = {k: [p[k][0]["content"] for p in pairs] for k in ("chosen", "rejected")}
    cutoff = cfg.data.cutoff_len
    policy, tokenizer = load_for_inference(run=run_dir)
    logps = {k: answer_logps(policy, tokenizer, prompts, v, cutoff) for k, v in texts.items()}
    del policy
    gc.collect()
    ref, ref_label = load_reference(cfg)
    ref_logps = {k: answer_logps(ref, tokenizer, prompts, v, cutoff) for k, v in texts.items()}
    del ref
    gc.collect()
    beta = cfg.stage_options.beta
    rewards = {k: [beta * (a - b) for a, b in zip(logps[k], ref_logps[k])] for k in texts}
    return {"kind": "dpo", "model": run_dir.name, "beta": beta, "reference": ref_label,
            **summarise_pairs(rewards["chosen"], rewards["rejected"])}


# ---- generation comparison ----

def load_policy(run: Path | None, cfg: RunConfig):
    """(causal LM, tokenizer): a run's weights, or (None) the evaluated run's base model with its
    chat template."""
    from engine.generate import load_base_tokenizer, load_for_inference

    if run is not None:
        return load_for_inference(run=run)
    from transformers import AutoModelForCausalLM

    from engine.models import resolve_model
    from engine.weights import compute_dtype

    path = resolve_model(cfg.model.name_or_path)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=compute_dtype())
    return lm.eval(), load_base_tokenizer(path, cfg.model.template)


def generate_answers(lm, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int = 8) -> list[str]:
    """Greedy answers to whole prompt conversations (system turn and history included)."""
    import torch

    from engine.generate import prepare_tokenizer, stop_token_ids

    prepare_tokenizer(tokenizer)
    answers: list[str] = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                     for p in prompts[start:start + batch_size]]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(lm.device)
            out = lm.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                              top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=stop_token_ids(lm, tokenizer))
            new = out[:, batch["input_ids"].shape[1]:]
            answers += [a.strip() for a in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return answers


def win_rate(scores: list[float], baseline: list[float]) -> float:
    """Fraction of prompts where the answer outscores the baseline's; ties count half."""
    return sum(1.0 if s > b else 0.5 if s == b else 0.0 for s, b in zip(scores, baseline, strict=True)) / len(scores)


def model_row(run: Path | None, answers: list[str], lengths: list[int], probes: list[str]) -> dict:
    n = len(answers)
    return {"run": run.name if run else None, "rm_score": None, "win_rate": None,
            **{name: sum(map(PROBES[name], answers)) / n for name in probes},
            "mean_length": sum(lengths) / n, "answers": answers, "scores": None}


def compare_generations(prompts: list[list[dict]], models: dict[str, Path | None], cfg: RunConfig,
                        max_new_tokens: int, reward_run: Path | None, probes: list[str],
                        progress: Progress = _quiet) -> dict:
    """Each model's greedy answers, probe fractions and mean length (tokens); with a reward run,
    each answer's RM score, the mean, and the win rate against the BASELINE model's answers."""
    rows = {}
    for label, run in models.items():
        progress(f"generating: {label} ({run.name if run else 'base model'}), {len(prompts)} prompts")
        lm, tokenizer = load_policy(run, cfg)
        answers = generate_answers(lm, tokenizer, prompts, max_new_tokens)
        lengths = [len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
        rows[label] = model_row(run, answers, lengths, probes)
        del lm
        gc.collect()
    if reward_run is not None:
        from engine.reward import load_reward_model, score

        progress(f"scoring the answers with {reward_run.name}")
        rm, rm_tokenizer = load_reward_model(reward_run)
        for row in rows.values():
            row["scores"] = score(rm, rm_tokenizer, prompts, row["answers"])
            row["rm_score"] = sum(row["scores"]) / len(prompts)
        del rm
        gc.collect()
        if BASELINE in rows:
            for row in rows.values():
                row["win_rate"] = win_rate(row["scores"], rows[BASELINE]["scores"])
    return {"prompts": [p[-1]["content"] for p in prompts], "models": rows}


# ---- the whole evaluation ----

def _load(name: str, cfg: RunConfig, preference: bool, limit: int | None) -> list[dict]:
    from engine.data import load_dataset_for_stage

    return list(load_dataset_for_stage(name, dataset_dir(cfg), preference, limit))


def evaluate(run: str | Path, dataset: str | None = None, compare: str | dict | None = None,
             reward_run: str | None = None, prompts: int = DEFAULT_PROMPTS,
             max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, pairs: int | None = None,
             probes: list[str] | None = None, progress: Progress = _quiet) -> dict:
    """Run both measurements on a run and write RUN/eval.json; returns what it wrote."""
    start, notes = time.time(), []
    run_dir = _with_weights("RUN", _run("RUN", run))
    cfg = read_config(run_dir)
    name, info = held_out(run_dir, cfg, dataset)
    models = parse_compare(compare) if isinstance(compare, str) else \
        dict(compare) if compare is not None else default_models(run_dir, cfg)
    rm = check_reward_run(reward_run, run_dir, cfg, notes) if models else None
    probes = list(PROBES) if probes is None else probes
    unknown = [p for p in probes if p not in PROBES]
    if unknown or prompts < 1 or max_new_tokens < 1 or (pairs is not None and pairs < 1):
        raise ConfigError(f"--probes: unknown {unknown[0]!r}; known: {', '.join(PROBES)}" if unknown else
                          "--prompts, --max-new-tokens and --pairs must be at least 1")
    preference = None
    if cfg.stage not in PREFERENCE_STAGES:
        notes.append(f"preference accuracy skipped: it measures dpo and rm runs, this is a {cfg.stage} run")
    elif not info.get("ranking"):
        notes.append(f"preference accuracy skipped: dataset {name!r} has no chosen/rejected pairs")
    else:
        rows = _load(name, cfg, True, pairs)
        progress(f"preference accuracy: {len(rows)} held-out pairs of {name}")
        preference = rm_preference(run_dir, rows) if cfg.stage == "rm" else dpo_preference(run_dir, cfg, rows)
    generation = None
    if models:
        chats = [row["prompt"] for row in _load(name, cfg, False, prompts)]
        generation = compare_generations(chats, models, cfg, max_new_tokens, rm, probes, progress)
        if rm is not None and BASELINE not in models:
            notes.append(f"win rates skipped: no model labelled {BASELINE!r} among those compared")
    else:
        notes.append("generation comparison skipped: " + ("an rm run writes no answers (pass --compare to "
                     "compare policies)" if cfg.stage == "rm" and compare is None else "no models to compare"))
    result = {
        "run": run_dir.name, "stage": cfg.stage, "created": datetime.now().isoformat(timespec="seconds"),
        "seconds": round(time.time() - start, 1),
        "settings": {"dataset": name, "pairs": preference["pairs"] if preference else None,
                     "prompts": len(generation["prompts"]) if generation else None, "max_new_tokens": max_new_tokens,
                     "reward_run": rm.name if rm else None, "baseline": BASELINE, "probes": probes,
                     "models": {k: v.name if v else None for k, v in models.items()}},
        "preference": preference, "generation": generation, "notes": notes,
    }
    atomic_write(run_dir / EVAL_FILE, json.dumps(result, indent=1))
    progress(f"wrote {run_dir / EVAL_FILE}")
    return result


def read_eval(run_dir: Path) -> dict | None:
    """A run's eval.json, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(run_dir) / EVAL_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


# ---- reading results ----

TABLE_HEADERS = ["model", "run", "RM score", "win rate vs sft"]


def table_headers(result: dict) -> list[str]:
    return TABLE_HEADERS + [*result["settings"]["probes"], "mean length (tokens)"]


def table_rows(result: dict) -> list[list]:
    """One row per compared model: label, run, RM score, win rate, probe fractions, length."""
    gen = result.get("generation") or {"models": {}}
    return [[label, row["run"] or "(base model)", row["rm_score"], row["win_rate"],
             *[row[p] for p in result["settings"]["probes"]], row["mean_length"]]
            for label, row in gen["models"].items()]


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def format_report(result: dict) -> str:
    """The results as a terminal table, with the preference block and the notes."""
    lines = [f"evaluation of {result['run']} on {result['settings']['dataset']}"]
    pref = result.get("preference")
    if pref:
        scale = f"implicit reward, beta {pref['beta']}, reference {pref['reference']}" if pref["kind"] == "dpo" \
            else "reward model scores"
        lines.append(f"preference ({scale}), {pref['pairs']} pairs: accuracy {pref['accuracy']:.1%}, "
                     f"margin {pref['margin']:.4g}, chosen {pref['chosen']:.4g}, rejected {pref['rejected']:.4g}")
    rows = [table_headers(result)] + [[_cell(c) for c in row] for row in table_rows(result)]
    if len(rows) > 1:
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        lines += ["", *("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from engine.cli import main

    sys.exit(main(["eval", *sys.argv[1:]]))
