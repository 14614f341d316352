"""PPO, RLHF's last stage: the policy answers prompts, a reward model (an RM run) scores the
answers, and the policy is pushed towards higher scores while a per-token KL penalty keeps it near
the reference, the SFT model it started from.

Reads top to bottom: tokenizer -> prompts -> policy + reference + value head -> reward model ->
iterations -> save. One iteration is one step on the charts:
  1. rollout: sample answers to ``rollout_batch_size`` prompts; score them with the reward model;
  2. turn scores and KL into per-token rewards, and rewards into advantages (GAE);
  3. learn: ``ppo_epochs`` passes over the answers in mini-batches of
     per_device_train_batch_size x gradient_accumulation_steps, one optimiser step each.
The arithmetic lives in engine/stages/ppo_math.py. The value head is a linear layer on the policy's last
hidden state (a shared trunk, as in TRL's former PPO trainer); it is saved beside the adapter.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from pathlib import Path

import torch

from engine.config import RunConfig, Sampling, reward_model_stages
from engine.data.rows import load_splits
from engine.inference.generate import answer_logprobs, generate
from engine.inference.reward import score
from engine.models.loader import finished_run, load_tokenizer, parent_run, reward_model, stop_token_ids, training_model
from engine.runs.checkpoints import resume_checkpoint
from engine.runs.folder import RunFolder
from engine.stages import ppo_checkpoint, ppo_math
from engine.stages.callbacks import STOP
from engine.stages.common import save_weights

log = logging.getLogger("engine")


def reference_context(policy, cfg: RunConfig):
    """A function returning (model, context) for reference forwards: the SFT weights frozen."""
    from trl.trainer.utils import use_adapter

    if cfg.model.finetuning_type == "full":
        frozen = copy.deepcopy(policy).eval().requires_grad_(False)
        return lambda: (frozen, contextlib.nullcontext())
    parent = parent_run(cfg)
    if parent is not None and not parent.weights().full:
        # The policy trains the parent's adapter in place, so the reference is a frozen copy of it.
        policy.load_adapter(parent.weights().path, adapter_name="ref", is_trainable=False)
        return lambda: (policy, use_adapter(policy, "ref"))
    return lambda: (policy, use_adapter(policy, None))  # no parent: the base model is the reference


def forward(model, value_head, sequences, attention_mask, prompt_len: int, temperature: float,
            with_entropy: bool = False):
    """Log-probs of the answer tokens (under the sampling temperature), value estimates before each
    of them, and optionally their entropies."""
    logprobs, logits, out = answer_logprobs(model, sequences, attention_mask, prompt_len, temperature,
                                            output_hidden_states=value_head is not None)
    values = None
    if value_head is not None:
        values = value_head(out.hidden_states[-1][:, prompt_len - 1:-1].float()).squeeze(-1)
    entropy = ppo_math.entropy_from_logits(logits) if with_entropy else None
    return logprobs, values, entropy


@torch.no_grad()
def rollout(m: dict, prompts: list, opts, kl_coef: float, moments: ppo_math.RunningMoments | None,
            seed: int | None = None) -> dict:
    """Answers to the prompts with everything PPO learns from: sampled at the rollout temperature,
    row i drawing with seed + i (reproducible, and no two rows share their draws); with no seed,
    greedy answers, which is what evaluation reads."""
    tok, policy = m["tokenizer"], m["policy"]
    greedy = seed is None
    sampling = Sampling(max_new_tokens=opts.max_new_tokens, temperature=0.0 if greedy else opts.temperature)
    policy.eval()
    gen = generate(policy, tok, prompts, sampling, seeds=None if greedy else [seed + i for i in range(len(prompts))])
    sequences, prompt_len = gen.sequences, gen.prompt["input_ids"].shape[1]
    mask, ended = ppo_math.answer_mask(gen.answer_ids, m["stop_ids"])
    attention = torch.cat([gen.prompt["attention_mask"], mask.long()], 1)
    temperature = 1.0 if greedy else opts.temperature
    # generate() only samples; the per-token log-probs PPO needs come from these forwards
    logprobs, values, _ = forward(policy, m["value_head"], sequences, attention, prompt_len, temperature)
    ref_model, ctx = m["reference"]()
    with ctx:
        ref_logprobs, _, _ = forward(ref_model, None, sequences, attention, prompt_len, temperature)
    raw_scores = torch.tensor(score(m["reward_model"], m["reward_tokenizer"], prompts, gen.texts))
    r = dict(sequences=sequences, attention=attention, prompt_len=prompt_len, mask=mask, ended=ended,
             logprobs=logprobs, values=values, ref_logprobs=ref_logprobs, raw_scores=raw_scores,
             answers=gen.texts)
    if not greedy:
        r.update(advantages_and_returns(r, opts, kl_coef, moments))
    return r


def advantages_and_returns(r: dict, opts, kl_coef: float, moments: ppo_math.RunningMoments) -> dict:
    scores = r["raw_scores"] - opts.missing_eos_penalty * (~r["ended"]).float()
    if opts.score_norm:
        moments.update(scores)
        scores = moments.normalise(scores)
    rewards, kl = ppo_math.token_rewards(r["logprobs"], r["ref_logprobs"], scores, r["mask"], kl_coef)
    if opts.whiten_rewards:
        rewards = ppo_math.masked_whiten(rewards, r["mask"], shift_mean=False)
    advantages, returns = ppo_math.gae(rewards, r["values"], r["mask"], opts.gamma, opts.lam)
    return dict(kl=kl, non_score_reward=(-kl_coef * kl).sum(1), scores=scores,
                advantages=ppo_math.masked_whiten(advantages, r["mask"]), returns=returns)


def learn(m: dict, r: dict, cfg: RunConfig) -> dict[str, float]:
    """ppo_epochs passes over one rollout; returns the mean of each loss statistic."""
    opts, t = cfg.stage_options, cfg.training
    policy, value_head = m["policy"], m["value_head"]
    policy.train()
    n, mini, micro = len(r["answers"]), t.per_device_train_batch_size * t.gradient_accumulation_steps, \
        t.per_device_train_batch_size
    totals: dict[str, float] = {}
    count = 0
    for _ in range(opts.ppo_epochs):
        order = torch.randperm(n)
        for start in range(0, n, mini):
            batch = order[start:start + mini]
            for part in batch.split(micro):
                logprobs, values, entropy = forward(policy, value_head, r["sequences"][part], r["attention"][part],
                                                    r["prompt_len"], opts.temperature, with_entropy=True)
                stats = ppo_math.ppo_losses(logprobs, r["logprobs"][part], r["advantages"][part], values,
                                       r["values"][part], r["returns"][part], r["mask"][part],
                                       opts.cliprange, opts.cliprange_value)
                loss = stats["policy_loss"] + opts.vf_coef * stats["value_loss"]
                (loss * len(part) / len(batch)).backward()
                stats.update(loss=loss, entropy=ppo_math.masked_mean(entropy, r["mask"][part]))
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + v.item()
                count += 1
            grad_norm = torch.nn.utils.clip_grad_norm_(m["params"], t.max_grad_norm)
            totals["grad_norm"] = totals.get("grad_norm", 0.0) + grad_norm.item() * len(batch.split(micro))
            m["optimizer"].step()
            m["scheduler"].step()
            m["optimizer"].zero_grad(set_to_none=True)
    return {k: v / count for k, v in totals.items()}


def iteration_metrics(r: dict, stats: dict, kl_coef: float, lr: float) -> dict[str, float]:
    """One iteration's log line; the names follow TRL's former PPO trainer."""
    kl_sum = r["kl"].sum(1)
    return {
        "loss": stats["loss"], "learning_rate": lr, "grad_norm": stats["grad_norm"],
        "objective/scores": r["raw_scores"].mean().item(),
        "objective/kl": kl_sum.mean().item(),
        "objective/entropy": (-r["logprobs"] * r["mask"]).sum(1).mean().item(),
        "objective/non_score_reward": r["non_score_reward"].mean().item(),
        "objective/rlhf_reward": (r["scores"] + r["non_score_reward"]).mean().item(),
        "objective/kl_coef": kl_coef,
        "loss/policy_avg": stats["policy_loss"], "loss/value_avg": stats["value_loss"],
        "policy/clipfrac_avg": stats["clipfrac"], "val/clipfrac_avg": stats["value_clipfrac"],
        "policy/approxkl_avg": stats["approxkl"], "policy/entropy_avg": stats["entropy"],
        "val/ratio": stats["ratio"],
        "completions/mean_length": r["mask"].sum(1).mean().item(),
        "completions/clipped_ratio": (~r["ended"]).float().mean().item(),
    }


def held_out_metrics(m: dict, prompts: list, opts, batch_size: int) -> dict[str, float]:
    """Greedy answers to the held-out prompts: their mean reward-model score, KL to the reference
    and length. Logged before training and at the end, so a run shows its own before/after."""
    scores, kls, lengths = [], [], []
    for start in range(0, len(prompts), batch_size):
        r = rollout(m, prompts[start:start + batch_size], opts, 0.0, None)
        scores += r["raw_scores"].tolist()
        kls += ((r["logprobs"] - r["ref_logprobs"]) * r["mask"]).sum(1).tolist()
        lengths += r["mask"].sum(1).tolist()
    return {"eval_objective/scores": sum(scores) / len(scores), "eval_objective/kl": sum(kls) / len(kls),
            "eval_completions/mean_length": sum(lengths) / len(lengths)}


def build(cfg: RunConfig) -> tuple[dict, list, list]:
    """Everything an iteration needs, and the (train, held-out) prompt lists."""
    from transformers import get_scheduler

    rm_run = finished_run("ppo.reward_run", cfg.stage_options.reward_run, reward_model_stages(),
                          "a reward model run")  # fail before loading anything
    if not cfg.init_from:
        log.warning("PPO without init_from: the policy and the reference are the bare base model; "
                    "PPO normally continues an SFT run")
    train_ds, eval_ds = load_splits(cfg, preference=False)
    policy, base_path = training_model(cfg)
    tokenizer = load_tokenizer(base_path, cfg.model.template)
    hidden = policy.config.get_text_config().hidden_size
    value_head = torch.nn.Linear(hidden, 1).to(policy.device)
    torch.nn.init.zeros_(value_head.weight)  # values start at 0: no random critic noise in the first advantages
    torch.nn.init.zeros_(value_head.bias)
    scorer, reward_tokenizer = reward_model(rm_run, device=str(policy.device))
    params = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.training.learning_rate, weight_decay=cfg.training.weight_decay)
    m = dict(policy=policy, tokenizer=tokenizer, value_head=value_head, reference=reference_context(policy, cfg),
             reward_model=scorer, reward_tokenizer=reward_tokenizer, params=params, optimizer=optimizer,
             stop_ids=stop_token_ids(policy, tokenizer))
    total = iterations(cfg, len(train_ds)) * optimiser_steps_per_iteration(cfg)
    m["scheduler"] = get_scheduler(cfg.training.lr_scheduler_type, optimizer,
                                   num_warmup_steps=math.ceil(cfg.training.warmup_ratio * total),
                                   num_training_steps=total)
    held_out = [row["prompt"] for row in eval_ds] if eval_ds is not None else []
    return m, [row["prompt"] for row in train_ds], held_out


def iterations(cfg: RunConfig, n_prompts: int) -> int:
    if cfg.training.max_steps > 0:
        return cfg.training.max_steps
    return max(1, math.ceil(cfg.training.num_train_epochs * n_prompts / cfg.stage_options.rollout_batch_size))


def optimiser_steps_per_iteration(cfg: RunConfig) -> int:
    t = cfg.training
    return cfg.stage_options.ppo_epochs * math.ceil(
        cfg.stage_options.rollout_batch_size / (t.per_device_train_batch_size * t.gradient_accumulation_steps))


def run(cfg: RunConfig, run: RunFolder, callbacks: list) -> Path:
    from safetensors.torch import save_file
    from transformers import TrainerControl, TrainerState

    torch.manual_seed(cfg.training.seed)
    m, prompts, held_out = build(cfg)
    opts, t = cfg.stage_options, cfg.training
    state, control = TrainerState(max_steps=iterations(cfg, len(prompts)), num_input_tokens_seen=0), TrainerControl()

    def notify(event: str, **kwargs) -> None:  # the Trainer callback protocol, so RunFolderCallback works as is
        for cb in callbacks:
            getattr(cb, event)(None, state, control, model=m["policy"], processing_class=m["tokenizer"], **kwargs)

    def emit(logs: dict) -> None:
        notify("on_log", logs=logs)

    kl_coef, moments = opts.kl_coef, ppo_math.RunningMoments()
    order = torch.randperm(len(prompts)).tolist()
    checkpoint = resume_checkpoint(run)
    if checkpoint is not None:  # `workbench train --resume`: models, optimizer, RNG and KL state as saved
        state, kl_coef = ppo_checkpoint.load(checkpoint.path, m, moments)
    notify("on_train_begin")
    if held_out and checkpoint is None:
        emit(held_out_metrics(m, held_out, opts, t.per_device_eval_batch_size))
    while state.global_step < state.max_steps and not (STOP.requested or control.should_training_stop):
        start = state.global_step * opts.rollout_batch_size
        batch = [prompts[order[(start + i) % len(order)]] for i in range(opts.rollout_batch_size)]
        notify("on_step_begin")
        r = rollout(m, batch, opts, kl_coef, moments, seed=t.seed * 1_000_003 + start)
        stats = learn(m, r, cfg)
        state.global_step += 1
        state.epoch = (start + len(batch)) / len(prompts)
        state.num_input_tokens_seen += int(r["attention"].sum())
        emit(iteration_metrics(r, stats, kl_coef, m["scheduler"].get_last_lr()[0]))
        if opts.adaptive_kl:
            kl_coef = ppo_math.adaptive_kl_coef(kl_coef, r["kl"].sum(1).mean().item(), opts.kl_target,
                                                opts.kl_horizon, len(batch))
        if held_out and t.eval_steps and state.global_step % t.eval_steps == 0:
            emit(held_out_metrics(m, held_out, opts, t.per_device_eval_batch_size))
        notify("on_step_end")  # RunFolderCallback asks for a save by time, or on a stop
        if control.should_save or (t.save_steps and state.global_step % t.save_steps == 0):
            ppo_checkpoint.save(run, m, state, kl_coef, moments)
            control.should_save = False
            notify("on_save")
    if held_out and not STOP.requested and not (t.eval_steps and state.global_step % t.eval_steps == 0):
        emit(held_out_metrics(m, held_out, opts, t.per_device_eval_batch_size))
    notify("on_train_end")
    out = save_weights(m["policy"], cfg, run, m["tokenizer"])
    save_file({k: v.detach().cpu().contiguous() for k, v in m["value_head"].state_dict().items()},
              out / "value_head.safetensors")
    return out
