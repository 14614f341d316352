"""Losses of the DPO family that TRL does not ship, on top of TRL's trainers.

DPO-Positive (DPOP, Pal et al. 2024, "Smaug: Fixing Failure Modes of Preference Optimisation with
DPO-Positive"): plain DPO can raise the margin while *lowering* the chosen answer's likelihood, as
long as the rejected one falls faster. DPOP adds a penalty inside the sigmoid whenever the policy
gives the chosen answer a lower log-prob than the reference does:

    loss = -log sigmoid(beta * [(logp(y_w) - ref(y_w)) - (logp(y_l) - ref(y_l))
                                - lambda * max(0, ref(y_w) - logp(y_w))])

with log-probs summed over the answer tokens.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from accelerate.utils import is_peft_model
from trl import DPOTrainer

from engine import seams


@contextlib.contextmanager
def recording_log_probs(modules):
    """Collect the per-token log-probs of every fused-head forward of ``modules``, in call order."""
    recorded: list[torch.Tensor] = []

    def record(_module, _args, output):
        # A plain forward (no fused head, e.g. TRL's extra one for return_outputs) has no log_probs.
        if getattr(output, "log_probs", None) is not None:
            recorded.append(output.log_probs)

    handles = [m.register_forward_hook(record) for m in modules]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


class DPOPTrainer(DPOTrainer):
    """TRL's DPOTrainer with the DPOP loss.

    TRL's loss loop is closed (one branch per built-in loss), and copying its 300-line loss
    method would fork the reference handling and the metrics. Instead TRL runs with only
    its "sft" term (weight ``pref_ftx``, possibly 0): it still runs the policy forward and then the
    reference forward (the "ref" adapter, adapters disabled, or the frozen copy), and logs every
    metric it logs for sigmoid (``rewards/*``, ``logps/*``, ...). ``loss_with_dpop`` records those two
    forwards' log-probs and adds the DPOP term to TRL's loss; it logs ``dpop/penalty``, the mean of
    max(0, ref(y_w) - logp(y_w)) in nats before lambda. Train with
    ``seams.with_loss_term(DPOPTrainer, DPOPTrainer.loss_with_dpop)``, which puts it in TRL's loss.
    """

    def __init__(self, *args, dpop_lambda: float, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the plain setup records the forwards this class expects (policy, then reference).
        if (self.loss_types != ["sft"] or self.ld_alpha is not None
                or self.f_divergence_type != "reverse_kl" or self.use_weighting):
            raise ValueError("DPOPTrainer needs loss_type=['sft'] (weight pref_ftx) and TRL's default "
                             "log-prob sums and divergence")
        self.dpop_lambda = dpop_lambda

    def scored_modules(self) -> list:
        """The modules TRL gave a fused LM head: the policy's base model, and the reference model if any."""
        policy = self.accelerator.unwrap_model(self.model)
        modules = [policy.get_base_model() if is_peft_model(policy) else policy]
        if self.ref_model is not None:
            modules.append(self.accelerator.unwrap_model(self.ref_model))
        return modules

    def loss_with_dpop(self, model, inputs, compute):
        """TRL's loss (``compute()``) plus the DPOP term, from the log-probs TRL's forwards recorded."""
        with recording_log_probs(self.scored_modules()) as recorded:
            loss = compute()
        forwards = 1 if self.precompute_ref_logps else 2  # precomputed: the reference is in the batch
        if len(recorded) != forwards:
            raise RuntimeError(f"DPOP expected TRL to run {forwards} scoring forward(s), saw {len(recorded)}")
        seq_len = inputs["completion_mask"].size(1) - 1  # the same slice TRL takes (prompt-tuning prefixes)
        sums = [logps[:, -seq_len:].sum(dim=1) for logps in recorded]  # zero outside the answers
        chosen, rejected = sums[0].chunk(2)  # TRL's batches are [chosen..., rejected...]
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_chosen, ref_rejected = sums[1].chunk(2)
        # relu, not clamp(min=0): at policy == reference (the first step of every run) clamp's gradient is 1,
        # so lambda x the chosen answers' gradient would swamp DPO's; the penalty only acts below the reference.
        penalty = torch.relu(ref_chosen - chosen)
        margin = (chosen - ref_chosen) - (rejected - ref_rejected) - self.dpop_lambda * penalty
        dpop_loss = -F.logsigmoid(self.beta * margin).mean()
        seams.log_metric(self, "dpop/penalty", self.accelerator.gather_for_metrics(penalty.detach()).mean().item())
        return loss + dpop_loss
