"""TRL's fused LM head scores only the completion positions on a CPU too, and the log-probabilities
DPO learns from stay exactly what they were."""

from __future__ import annotations

import torch
import trl.trainer.utils as trl_utils
from trl.trainer.utils import add_fused_lm_head

from engine.models.loader import causal_lm
from engine.stages.cpu_speed import score_completions_only


def fused_log_probs(model, ids, labels, monkeypatch, compact: bool):
    """The fused head's per-token log-probs, and how many positions it projected through the vocabulary."""
    seen = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting(hidden, *args):
        seen.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting)
    monkeypatch.setattr(trl_utils, "_use_triton", lambda device: compact)  # monkeypatch restores TRL's rule
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    return out.log_probs, seen[0]


def test_completion_only_scoring_gives_the_same_log_probs_for_less_work(tiny_model, monkeypatch):
    model = causal_lm(tiny_model, torch.float32).eval()
    add_fused_lm_head(model)
    ids = torch.randint(3, 200, (2, 24), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :16] = -100  # the prompt: 16 positions of 24 carry no label
    everything, scored_all = fused_log_probs(model, ids, labels, monkeypatch, compact=False)
    completions, scored_some = fused_log_probs(model, ids, labels, monkeypatch, compact=True)
    assert scored_all == 2 * 23 and scored_some == 2 * 8
    torch.testing.assert_close(completions, everything, rtol=0, atol=1e-5)
    assert completions[:, :15].abs().sum() == 0 and completions[:, 15:].abs().sum() > 0


def test_the_cpu_is_made_to_compact_once(monkeypatch):
    monkeypatch.setattr(trl_utils, "_use_triton", lambda device: False)
    score_completions_only()
    score_completions_only()
    assert trl_utils._use_triton(torch.device("cpu")) is True
    assert trl_utils._use_triton(torch.device("meta")) is False
    assert trl_utils._use_triton.workbench
