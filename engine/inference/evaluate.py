"""Did alignment work? Two held-out measurements of a run, done as a job of the run (engine.job):
its results are the job's result.json, and the newest completed one is the run's evaluation.

1. Preference accuracy on held-out pairs. A reward model scores the chosen and the rejected answer;
   a policy trained on pairs (DPO, any loss type) gets DPO's implicit reward
   beta * (log pi(y|x) - log pi_ref(y|x)), summed over the answer tokens, with pi its weights and
   pi_ref its parent run's (or the base model when it has none). Accuracy = fraction of pairs with
   chosen > rejected.
2. A generation comparison: held-out prompts answered greedily by several models (base, SFT, DPO,
   PPO ...), every answer scored by a reward model, and per model: mean score, win rate against
   the SFT model's answers (ties count half), the alignment accuracy of each task probe the
   held-out dataset declares (engine.data.probes: passing it and not degenerate), the fraction of
   degenerate answers (empty or looping) and the mean length.

The settings are engine.config.EvalConfig (the `workbench eval` flags and the Evaluate tab's
widgets). Light at import (torch and the libraries are imported inside the functions that load
models), so the web UI may import it for the table rows.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from engine.config import (
    BASE_POLICY,
    REFERENCE_FREE_LOSSES,
    STAGES,
    ConfigError,
    EvalConfig,
    RunConfig,
    Sampling,
    policy_stages,
    reward_model_stages,
)
from engine.data.probes import Probe, choose, declaration, parse_probes
from engine.data.registry import DatasetError, dataset_folder, read_registry
from engine.data.rows import load_dataset_for_stage
from engine.models.loader import finished_run, parent_run
from engine.runs.degeneration import degenerate
from engine.runs.folder import RunFolder, latest_run
from engine.runs.jobs import list_jobs
from engine.runs.status import State

BASELINE = BASE_POLICY  # win rates are against the answers of the model with this label
NONE = "none"  # --compare none: no generation comparison; --reward-run none: no scores
Progress = Callable[[str], None]


def check_reward_run(name: str | None, run: RunFolder, cfg: RunConfig, notes: list[str]) -> RunFolder | None:
    """The reward-model run that scores answers: the one named, else the evaluated run when it is a
    reward model, else the newest completed one; None (with a note) when there is none or 'none'."""
    if name is not None and name.lower() == NONE:
        notes.append("RM scores and win rates skipped: --reward-run none")
        return None
    if name is None and not STAGES[cfg.stage].writes_answers:
        return run
    if name:
        return finished_run("--reward-run", name, reward_model_stages(), "a reward model run")
    latest = latest_run(reward_model_stages())
    if latest is None:
        notes.append("RM scores and win rates skipped: no completed reward-model run (train one or pass "
                     "--reward-run)")
    return latest


def parse_compare(text: str) -> dict[str, RunFolder | None]:
    """'base,sft=RUN,dpo=RUN' -> {label: run folder, base: None}; 'none' -> {}."""
    models: dict[str, RunFolder | None] = {}
    if text.strip().lower() == NONE:
        return models
    for item in (part.strip() for part in text.split(",") if part.strip()):
        label, sep, name = (s.strip() for s in item.partition("="))
        if label in models:
            raise ConfigError(f"--compare: label {label!r} appears twice; give each model its own label")
        if not (sep and label and name) and item != "base":
            raise ConfigError(f"--compare: {item!r} should be LABEL=RUN (e.g. sft=latest:sft) or base")
        want = f"a run whose weights write answers ({', '.join(policy_stages())}); a reward model only scores them"
        models[label] = finished_run("--compare", name, policy_stages(), want) if sep else None
    return models


def default_models(run: RunFolder, cfg: RunConfig) -> dict[str, RunFolder | None]:
    """What a run is compared with: the base model and the run, and for a run trained against its
    parent (DPO, PPO) the parent too, labelled by its stage; a reward model writes no answers."""
    if not STAGES[cfg.stage].writes_answers:
        return {}
    models: dict[str, RunFolder | None] = {"base": None}
    if STAGES[cfg.stage].compared_with_parent and cfg.init_from:
        parent = parent_run(cfg)
        stage = parent.config().stage
        models[stage if stage != cfg.stage else "parent"] = parent
    models[cfg.stage] = run
    return models


def held_out(run: RunFolder, cfg: RunConfig, dataset: str | None) -> tuple[str, dict]:
    """(dataset name, its registry entry): the one named, else the run's data.eval_dataset."""
    name = dataset or cfg.data.eval_dataset
    if not name:
        raise ConfigError(f"--dataset: run {run.name} has no data.eval_dataset; name a registered "
                          "held-out dataset, e.g. --dataset sql_dpo_eval")
    registry = read_registry(dataset_folder(cfg.data.dataset_dir))
    if name not in registry:
        raise ConfigError(f"--dataset: {name!r} is not registered in {dataset_folder(cfg.data.dataset_dir)}; "
                          f"registered: {', '.join(sorted(registry)) or 'none'}")
    return name, registry[name]


def tokenize_pair(tokenizer, prompt: list[dict], answer: str, max_length: int | None = None) -> tuple[list[int], int]:
    """(token ids, prompt length) as TRL's DPO trainer tokenises a conversational pair: the prompt
    with the generation prompt, the whole conversation, the answer from where the two diverge;
    truncated to max_length keeping the start."""
    prompt_ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True,
                                               return_dict=True)["input_ids"]
    ids = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": answer}], tokenize=True,
                                        return_dict=True)["input_ids"]
    ids = ids[:max_length] if max_length else ids
    return ids, len(os.path.commonprefix([prompt_ids, ids]))


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


def rm_preference(run: RunFolder, pairs: list[dict]) -> dict:
    """The RM run's scores of the chosen and the rejected answers."""
    from engine.inference.reward import score
    from engine.models.loader import reward_model

    model, tokenizer = reward_model(run)
    prompts = [p["prompt"] for p in pairs]
    chosen = score(model, tokenizer, prompts, [p["chosen"][0]["content"] for p in pairs])
    rejected = score(model, tokenizer, prompts, [p["rejected"][0]["content"] for p in pairs])
    return {"kind": "reward_model", "model": run.name, "beta": None, "reference": None,
            **summarise_pairs(chosen, rejected)}


def dpo_preference(run: RunFolder, cfg: RunConfig, pairs: list[dict]) -> dict:
    """DPO's implicit rewards beta * (log pi - log pi_ref) of the chosen and rejected answers, with
    the run's own tokenizer (its chat template) for both models. The reference is the parent run's
    weights, or the base model."""
    from engine.models.loader import inference_model

    prompts = [p["prompt"] for p in pairs]
    texts = {k: [p[k][0]["content"] for p in pairs] for k in ("chosen", "rejected")}
    cutoff = cfg.data.cutoff_len
    policy, tokenizer = inference_model(run=run)
    logps = {k: answer_logps(policy, tokenizer, prompts, v, cutoff) for k, v in texts.items()}
    del policy  # one model in memory at a time
    parent = parent_run(cfg)
    ref = inference_model(cfg.model.name_or_path, parent)[0]
    ref_logps = {k: answer_logps(ref, tokenizer, prompts, v, cutoff) for k, v in texts.items()}
    beta = cfg.stage_options.beta
    rewards = {k: [beta * (a - b) for a, b in zip(logps[k], ref_logps[k])] for k in texts}
    return {"kind": "implicit_reward", "model": run.name, "beta": beta, "reference": parent.name if parent else "base",
            **summarise_pairs(rewards["chosen"], rewards["rejected"])}


def load_policy(run: RunFolder | None, cfg: RunConfig):
    """(causal LM, tokenizer): a run's weights, or (None) the evaluated run's base model with its
    chat template."""
    from engine.models.loader import inference_model, load_tokenizer

    lm, tokenizer = inference_model(cfg.model.name_or_path, run)
    if run is None:  # in the chat format of the runs it is compared with
        tokenizer = load_tokenizer(cfg.model.name_or_path, cfg.model.template)
    return lm, tokenizer


def win_rate(scores: list[float], baseline: list[float]) -> float:
    """Fraction of prompts where the answer outscores the baseline's; ties count half."""
    return sum(1.0 if s > b else 0.5 if s == b else 0.0 for s, b in zip(scores, baseline, strict=True)) / len(scores)


def compare_generations(prompts: list[list[dict]], models: dict[str, RunFolder | None], cfg: RunConfig,
                        max_new_tokens: int, reward_run: RunFolder | None, probes: dict[str, Probe],
                        progress: Progress) -> dict:
    """Each model's greedy answers, probe fractions and mean length (tokens); with a reward run,
    each answer's RM score, the mean, and the win rate against the BASELINE model's answers."""
    from engine.inference.generate import answer

    rows = {}
    for label, run in models.items():
        progress(f"generating: {label} ({run.name if run else 'base model'}), {len(prompts)} prompts")
        lm, tokenizer = load_policy(run, cfg)
        answers, lengths = answer(lm, tokenizer, prompts, Sampling(max_new_tokens=max_new_tokens))
        rows[label] = {"run": run.name if run else None, "rm_score": None, "win_rate": None,
                       **{name: probe.accuracy(answers) for name, probe in probes.items()},
                       "degenerate": sum(map(degenerate, answers)) / len(answers),
                       "mean_length": sum(lengths) / len(answers), "answers": answers, "scores": None}
        del lm
    if reward_run is not None:
        from engine.inference.reward import score
        from engine.models.loader import reward_model

        progress(f"scoring the answers with {reward_run.name}")
        rm, rm_tokenizer = reward_model(reward_run)
        for row in rows.values():
            row["scores"] = score(rm, rm_tokenizer, prompts, row["answers"])
            row["rm_score"] = sum(row["scores"]) / len(prompts)
        if BASELINE in rows:
            for row in rows.values():
                row["win_rate"] = win_rate(row["scores"], rows[BASELINE]["scores"])
    return {"prompts": [p[-1]["content"] for p in prompts], "models": rows}


def _load(name: str, cfg: RunConfig, preference: bool, limit: int | None) -> list[dict]:
    rows = load_dataset_for_stage(name, dataset_folder(cfg.data.dataset_dir), preference, limit)
    if "prompt" not in rows.column_names:
        raise DatasetError(f"dataset {name!r} is plain text: it has no prompts to answer; pick a held-out set "
                           "of prompts (with answers or pairs)")
    return list(rows)


@dataclass
class Plan:  # the checked settings of one evaluation
    run: RunFolder
    cfg: RunConfig
    settings: EvalConfig
    dataset: str
    ranking: bool
    models: dict[str, RunFolder | None]
    reward_run: RunFolder | None
    probes: dict[str, Probe]
    notes: list[str] = field(default_factory=list)


def plan(run: str | Path | RunFolder, settings: EvalConfig = EvalConfig()) -> Plan:
    """Check every setting before any model loads; each error names the flag to fix."""
    run = finished_run("RUN", run)
    cfg = run.config()
    name, info = held_out(run, cfg, settings.dataset)
    models = parse_compare(settings.compare) if settings.compare is not None else default_models(run, cfg)
    probes = choose(parse_probes(info.get("probes")), settings.probes, settings.probe)
    notes: list[str] = []
    rm = check_reward_run(settings.reward_run, run, cfg, notes) if models else None
    return Plan(run, cfg, settings, name, bool(info.get("ranking")), models, rm, probes, notes)


def preference_block(p: Plan, progress: Progress) -> dict | None:
    """Held-out preference accuracy of a run trained on pairs: a reward model's scores, or a
    policy's implicit reward (None, with a note, for other runs)."""
    stage = STAGES[p.cfg.stage]
    if not stage.needs_pairs:
        p.notes.append(f"preference accuracy skipped: it measures runs trained on preference pairs, this is "
                       f"{stage.a_run}")
        return None
    if not p.ranking:
        p.notes.append(f"preference accuracy skipped: dataset {p.dataset!r} has no chosen/rejected pairs")
        return None
    rows = _load(p.dataset, p.cfg, True, p.settings.pairs)
    progress(f"preference accuracy: {len(rows)} held-out pairs of {p.dataset}")
    if not stage.writes_answers:
        return rm_preference(p.run, rows)
    block = dpo_preference(p.run, p.cfg, rows)
    if p.cfg.stage_options.loss_type in REFERENCE_FREE_LOSSES:
        p.notes.append(f"{p.cfg.stage_options.loss_type} trains without a reference model; the implicit "
                       f"rewards are still measured against {block['reference']}")
    return block


def evaluate(run: str | Path | RunFolder, settings: EvalConfig = EvalConfig(),
             progress: Progress | None = None) -> dict:
    """Both measurements on a run; returns the results (an eval job writes them to its result.json)."""
    start, progress = time.time(), progress or (lambda _message: None)
    p = plan(run, settings)
    import torch

    # As in engine.train: denormal floats (small LoRA deltas) make x86 CPUs several times slower.
    torch.set_flush_denormal(True)
    preference, generation = preference_block(p, progress), None
    if p.models:
        chats = [row["prompt"] for row in _load(p.dataset, p.cfg, False, settings.prompts)]
        generation = compare_generations(chats, p.models, p.cfg, settings.max_new_tokens, p.reward_run, p.probes,
                                         progress)
        if p.reward_run is not None and BASELINE not in p.models:
            p.notes.append(f"win rates skipped: no model labelled {BASELINE!r} among those compared")
    else:
        p.notes.append("generation comparison skipped: " + ("a reward model writes no answers (pass --compare "
                       "to compare policies)" if not STAGES[p.cfg.stage].writes_answers else "no models to compare"))
    return {
        "run": p.run.name, "stage": p.cfg.stage, "created": datetime.now().isoformat(timespec="seconds"),
        "seconds": round(time.time() - start, 1),
        "settings": {**asdict(settings), "dataset": p.dataset, "pairs": preference["pairs"] if preference else None,
                     "prompts": len(generation["prompts"]) if generation else None,
                     "reward_run": p.reward_run.name if p.reward_run else None, "baseline": BASELINE,
                     "probes": list(p.probes), "probe_declarations": {n: declaration(pr) for n, pr in p.probes.items()},
                     "models": {k: v.name if v else None for k, v in p.models.items()}},
        "preference": preference, "generation": generation, "notes": p.notes,
    }


def read_eval(run: RunFolder) -> dict | None:
    """The run's newest completed evaluation, or None."""
    return next((job.result() for job in list_jobs(run, "eval") if job.status().state == State.COMPLETED), None)


def table_headers(result: dict) -> list[str]:
    return ["model", "run", "RM score", f"win rate vs {BASELINE}", *result["settings"]["probes"],
            "degenerate", "mean length (tokens)"]


def table_rows(result: dict) -> list[list]:
    """One row per compared model: label, run, RM score, win rate, probe fractions, length."""
    gen = result.get("generation") or {"models": {}}
    return [[label, row["run"] or "(base model)", row["rm_score"], row["win_rate"],
             *[row[p] for p in result["settings"]["probes"]], row.get("degenerate"), row["mean_length"]]
            for label, row in gen["models"].items()]


def format_report(result: dict) -> str:
    """The results as a terminal table, with the preference block and the notes."""
    lines = [f"evaluation of {result['run']} on {result['settings']['dataset']}"]
    pref = result.get("preference")
    if pref:
        scale = f"implicit reward, beta {pref['beta']}, reference {pref['reference']}" \
            if pref["kind"] == "implicit_reward" else "reward model scores"
        lines.append(f"preference ({scale}), {pref['pairs']} pairs: accuracy {pref['accuracy']:.1%}, "
                     f"margin {pref['margin']:.4g}, chosen {pref['chosen']:.4g}, rejected {pref['rejected']:.4g}")
    rows = [table_headers(result)] + [["-" if c is None else f"{c:.3g}" if isinstance(c, float) else str(c)
                                       for c in row] for row in table_rows(result)]
    if len(rows) > 1:
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        lines += ["", *("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)
