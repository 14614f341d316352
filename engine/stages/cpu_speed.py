"""What the training libraries leave on the table on a CPU, measured (README "Performance").

TRL's fused LM head (DPO's log-probabilities, SFT's loss on the answer tokens) projects only the
labelled positions through the vocabulary where Triton runs; elsewhere it scores every position,
prompt and padding included, and masks afterwards, because on Neuron a varying number of positions
would recompile its kernels. A CPU compiles nothing, and the LM head (49k x 576 for SmolLM2) is a
sixth of a DPO step there: scoring only the labelled positions gives the same log-probabilities for
less work.
"""

from __future__ import annotations


def score_completions_only() -> None:
    """Make TRL's fused LM head score only the labelled positions on a CPU too (idempotent)."""
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    if getattr(original, "workbench", False):
        return

    def compact(device) -> bool:
        return device.type == "cpu" or original(device)

    compact.workbench = True
    trl_utils._use_triton = compact  # read by the fused forward only; the kernels keep their own

