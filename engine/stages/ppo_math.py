"""The arithmetic of PPO for language models, as plain tensor functions (the loop that uses them is
engine/stages/ppo.py). TRL 1.16 no longer ships a PPO trainer; this follows its former one and
"Secrets of RLHF" / "The N+ implementation details of RLHF with PPO" (Huang et al., 2024).

Shapes: every per-token tensor is (batch, answer_len); ``mask`` is 1 on answer tokens up to and
including the end-of-turn token, 0 after it.
"""

from __future__ import annotations

import math

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Zero mean (optionally kept), unit variance over the masked entries."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    return (whitened if shift_mean else whitened + mean) * mask


def token_rewards(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, scores: torch.Tensor,
                  mask: torch.Tensor, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: -kl_coef * (log pi - log pi_ref) at each answer token, plus the reward
    model's score at the last one. Returns (rewards, per-token KL estimate)."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards, kl


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation backwards over the answer; (advantages, returns).
    Past the end of an answer values and rewards are zero, so the last token bootstraps from 0."""
    values, rewards = values * mask, rewards * mask
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(last_gae)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last_gae = delta + gamma * lam * last_gae
        advantages[:, t] = last_gae
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def ppo_losses(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
               values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               cliprange: float, cliprange_value: float) -> dict[str, torch.Tensor]:
    """Clipped policy loss and clipped value loss, with the statistics PPO runs are judged by."""
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)
    pg_unclipped = -advantages * ratio
    pg_clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    values_clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    vf_unclipped = (values - returns) ** 2
    vf_clipped = (values_clipped - returns) ** 2
    return {
        "policy_loss": masked_mean(torch.max(pg_unclipped, pg_clipped), mask),
        "value_loss": 0.5 * masked_mean(torch.max(vf_unclipped, vf_clipped), mask),
        "clipfrac": masked_mean((pg_clipped > pg_unclipped).float(), mask),
        "value_clipfrac": masked_mean((vf_clipped > vf_unclipped).float(), mask),
        "approxkl": 0.5 * masked_mean(log_ratio ** 2, mask),
        "ratio": masked_mean(ratio, mask),
    }


def adaptive_kl_coef(kl_coef: float, kl: float, target: float, horizon: int, n_answers: int) -> float:
    """Ziegler et al.'s controller: nudge the coefficient so the measured KL tracks the target
    (the error is clipped to +-20% so one odd batch cannot swing it)."""
    error = max(-0.2, min(0.2, kl / target - 1.0))
    return kl_coef * (1.0 + error * n_answers / horizon)


class RunningMoments:
    """Running mean and std of every score seen (Chan et al.'s parallel update), to normalise the
    reward model's scores onto one scale whatever the reward model."""

    def __init__(self) -> None:
        self.count, self.mean, self.var = 0, 0.0, 1.0

    def update(self, xs: torch.Tensor) -> None:
        n = xs.numel()
        batch_mean, batch_var = xs.mean().item(), xs.var(unbiased=False).item()
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta ** 2 * self.count * n / total
        self.mean += delta * n / total
        self.var, self.count = m2 / total, total

    def normalise(self, xs: torch.Tensor) -> torch.Tensor:
        return (xs - self.mean) / math.sqrt(self.var + 1e-8)


def answer_mask(answers: torch.Tensor, stop_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask up to and including the first stop token, whether each answer reached one). An
    answer cut off at max_new_tokens has no stop token; what generate() pads after a stop is out."""
    is_stop = torch.isin(answers, torch.tensor(stop_ids, device=answers.device))
    ended = is_stop.any(1)
    first_stop = torch.where(ended, is_stop.float().argmax(1), answers.shape[1])
    positions = torch.arange(answers.shape[1], device=answers.device).expand_as(answers)
    return (positions <= first_stop.unsqueeze(1)).float(), ended


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-token entropy of the sampling distribution."""
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(-1)
