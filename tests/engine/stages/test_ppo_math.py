"""PPO's arithmetic (engine/stages/ppo_math.py) against values worked out by hand, and the stage's pieces."""

from __future__ import annotations

import math

import pytest
import torch

from engine.stages import ppo_math


def test_token_rewards_put_kl_on_every_token_and_the_score_on_the_last():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, 0.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0], [-2.0, -0.5, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards, kl = ppo_math.token_rewards(logprobs, ref, torch.tensor([2.0, -1.0]), mask, kl_coef=0.1)
    # kl = logp - ref: row 0 (0.5, 0, -1); row 1 (1, -0.5, masked)
    torch.testing.assert_close(kl, torch.tensor([[0.5, 0.0, -1.0], [1.0, -0.5, 0.0]]))
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, 0.0, 0.1 + 2.0], [-0.1, 0.05 - 1.0, 0.0]]))


def test_gae_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 1.0, 1.5]])
    mask = torch.ones(1, 3)
    gamma, lam = 0.9, 0.8
    d2 = 2.0 + 0 - 1.5                      # last token bootstraps from 0
    d1 = 0.0 + gamma * 1.5 - 1.0
    d0 = 1.0 + gamma * 1.0 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    advantages, returns = ppo_math.gae(rewards, values, mask, gamma, lam)
    torch.testing.assert_close(advantages, torch.tensor([[a0, a1, a2]]))
    torch.testing.assert_close(returns, torch.tensor([[a0 + 0.5, a1 + 1.0, a2 + 1.5]]))


def test_gae_ignores_tokens_after_the_answer():
    rewards = torch.tensor([[1.0, 5.0, 7.0]])
    values = torch.tensor([[0.5, 9.0, 9.0]])
    advantages, returns = ppo_math.gae(rewards, values, torch.tensor([[1.0, 0.0, 0.0]]), 1.0, 1.0)
    torch.testing.assert_close(advantages, torch.tensor([[0.5, 0.0, 0.0]]))  # 1 + 0 - 0.5
    torch.testing.assert_close(returns, torch.tensor([[1.0, 0.0, 0.0]]))


def test_ppo_losses_clip_by_hand():
    old = torch.zeros(1, 2)
    new = torch.tensor([[math.log(1.5), math.log(0.9)]])  # ratios 1.5 and 0.9
    adv = torch.tensor([[1.0, -2.0]])
    values, old_values, returns = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.0]]), torch.tensor([[2.0, 1.0]])
    out = ppo_math.ppo_losses(new, old, adv, values, old_values, returns, torch.ones(1, 2), cliprange=0.2,
                         cliprange_value=0.2)
    # token 0: max(-1*1.5, -1*1.2) = -1.2 (clipped); token 1: max(2*0.9, 2*0.9) = 1.8 (inside the range)
    assert out["policy_loss"].item() == pytest.approx((-1.2 + 1.8) / 2)
    assert out["clipfrac"].item() == pytest.approx(0.5)
    # value token 0: clipped prediction 0.7 -> (0.7-2)^2 = 1.69 > (1-2)^2 = 1; token 1: 1 either way
    assert out["value_loss"].item() == pytest.approx(0.5 * (1.69 + 1.0) / 2)
    assert out["value_clipfrac"].item() == pytest.approx(0.5)
    assert out["approxkl"].item() == pytest.approx(0.5 * (math.log(1.5) ** 2 + math.log(0.9) ** 2) / 2)
    assert out["ratio"].item() == pytest.approx((1.5 + 0.9) / 2)


def test_adaptive_kl_moves_towards_the_target_and_clips_the_error():
    assert ppo_math.adaptive_kl_coef(0.1, kl=12.0, target=6.0, horizon=100, n_answers=10) == pytest.approx(0.1 * 1.02)
    assert ppo_math.adaptive_kl_coef(0.1, kl=5.4, target=6.0, horizon=100, n_answers=10) == pytest.approx(0.1 * 0.99)


def test_running_moments_match_the_whole_sample():
    moments = ppo_math.RunningMoments()
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0])
    moments.update(a)
    moments.update(b)
    both = torch.cat([a, b])
    assert moments.mean == pytest.approx(both.mean().item())
    assert moments.var == pytest.approx(both.var(unbiased=False).item())
    assert moments.normalise(torch.tensor([both.mean().item()])).item() == pytest.approx(0.0, abs=1e-6)


def test_answer_mask_stops_at_the_first_end_token():
    answers = torch.tensor([[5, 6, 2, 0, 0], [5, 6, 7, 8, 9], [2, 0, 0, 0, 0]])
    mask, ended = ppo_math.answer_mask(answers, stop_ids=[2])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert ended.tolist() == [True, False, True]


def test_masked_whiten():
    values = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    out = ppo_math.masked_whiten(values, mask)
    torch.testing.assert_close(out, torch.tensor([[-1.0, 1.0, 0.0]]), atol=1e-4, rtol=0)
