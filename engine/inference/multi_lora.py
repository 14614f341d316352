"""Batched multi-LoRA decoding: one base model, several LoRA adapters, one adapter per batch row.

peft's mixed-adapter batch (``adapter_names=[...]``) loops over the adapters in every LoRA layer,
with index lists, gathers and scatters, at every forward. For chat's 1-token decode steps on a CPU
that bookkeeping costs more than the LoRA math (SmolLM2-135M, 4 columns: 0.63x of plain
``generate``). ``pack`` replaces each LoRA-wrapped linear by a ``MultiLoraLinear`` that holds every
adapter stacked and needs two batched matmuls per forward, whatever the number of adapters:

    out = base(x) + bmm(bmm(x, A[slot]), B[slot])     A: (slots, in, r), B: (slots, r, out)

with each row's slot picked once per generate call (slot 0 is the bare base: zeros), ranks padded
to the largest with zeros and the scaling folded into B. Measured per SmolLM2 layer at 4 rows, this
adds ~9 us to the base linear; one GEMM over all adapters' A concatenated, masked per row, then an
addmm over the B's concatenated, adds ~17 us (one op more, and the wide GEMMs cost more than bmm's).

Only plain LoRA on linear layers packs (no DoRA or other variants, no LoRA bias, no trainable
embeddings or ``modules_to_save``); anything else keeps peft's mixed batch (``pack`` returns None),
which refuses DoRA itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from engine import seams

BASE_NAME = "__base__"  # peft's name for "no adapter" in a mixed batch, kept for the same rows here
BASE = -1  # row index of the bare base model
ROWS_ATTR = "multi_lora_rows"  # a packed model's Rows


class Rows:
    """The adapter index of every batch row, shared by all packed layers of one model; its version
    lets each layer pick its rows' weights once per generate call, not at every forward."""

    def __init__(self, names: list[str]):
        self.names = list(names)  # the adapters' peft names, in index order
        self.index: list[int] = []
        self.version = 0

    def set(self, index: list[int]) -> None:
        self.index = list(index)
        self.version += 1


class MultiLoraLinear(nn.Module):
    """A base linear plus n adapters' LoRA updates, each row taking its own adapter's (or none)."""

    def __init__(self, base_layer: nn.Module, weights_a: list[torch.Tensor | None],
                 weights_b: list[torch.Tensor | None], scalings: list[float], rows: Rows):
        super().__init__()
        self.base_layer = base_layer
        present = [a for a in weights_a if a is not None]
        rank, dtype, device = max(a.shape[0] for a in present), present[0].dtype, present[0].device
        fan_in, fan_out = present[0].shape[1], next(b for b in weights_b if b is not None).shape[0]
        # slot 0: the bare base, zeros; slot i + 1: adapter i, zeros where it does not target this
        # layer. Ranks are padded with zeros to the largest and the scaling folded into B: a padded
        # or empty slot adds exact zeros, so the base row's output is the bare linear's.
        lora_a = torch.zeros(len(weights_a) + 1, fan_in, rank, dtype=dtype, device=device)
        lora_b = torch.zeros(len(weights_a) + 1, rank, fan_out, dtype=dtype, device=device)
        for slot, (a, b, scaling) in enumerate(zip(weights_a, weights_b, scalings), 1):
            if a is not None:
                lora_a[slot, :, :a.shape[0]] = a.t()
                lora_b[slot, :a.shape[0]] = b.t() * scaling
        self.register_buffer("lora_a", lora_a, persistent=False)
        self.register_buffer("lora_b", lora_b, persistent=False)
        self.targeted = {slot for slot, a in enumerate(weights_a, 1) if a is not None}
        self.rows = rows
        # a plain Linear without hooks or a patched forward (accelerate's offloading patches it) is
        # called as its function: one module call less per layer and step (210 a step on SmolLM2)
        self._plain_base = seams.hookless_linear(base_layer)
        self._version = -1
        self._weights: tuple[torch.Tensor, torch.Tensor] | None = None  # per row: (batch, in, r), (batch, r, out)

    def _row_weights(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each row's A and B, picked once per generate call: a view of the stacks where the rows
        take consecutive slots (chat's base + runs in load order), else a gathered copy."""
        if self._version != self.rows.version:
            if not self.rows.index:
                raise RuntimeError("a packed multi-LoRA model decodes inside adapters_per_row(...) only")
            slots = [0 if i == BASE else i + 1 for i in self.rows.index]
            if not self.targeted.intersection(slots):
                self._weights = None  # e.g. base-only rows: the bare linear
            elif slots == list(range(slots[0], slots[0] + len(slots))):
                self._weights = self.lora_a[slots[0]:slots[-1] + 1], self.lora_b[slots[0]:slots[-1] + 1]
            else:
                index = torch.tensor(slots, device=self.lora_a.device)
                self._weights = self.lora_a.index_select(0, index), self.lora_b.index_select(0, index)
            self._version = self.rows.version
        return self._weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self.base_layer
        result = F.linear(x, base.weight, base.bias) if self._plain_base else base(x)
        weights = self._row_weights()
        if weights is None:
            return result
        lora_a, lora_b = weights
        if x.dim() != 3 or x.shape[0] != lora_a.shape[0]:
            raise RuntimeError(f"input of shape {tuple(x.shape)}, adapters set for {lora_a.shape[0]} rows")
        if not x.dtype == result.dtype == lora_a.dtype:  # peft computes LoRA in the adapter's dtype
            return result + torch.bmm(torch.bmm(x.to(lora_a.dtype), lora_a), lora_b).to(result.dtype)
        # the update accumulates into the fresh base output in place, no new tensor
        return result.baddbmm_(torch.bmm(x, lora_a), lora_b)


def pack(peft_model, adapters: list[str]) -> nn.Module | None:
    """The underlying transformers model of a PeftModel holding ``adapters`` (peft names), with
    every LoRA linear packed; None where some layer cannot pack (the PeftModel is left as it was).
    Decode it inside ``adapters_per_row``.

    The packed layers take over the base layers and copies of the (small) LoRA weights, so the
    PeftModel must not be used afterwards.
    """
    layers = seams.plain_lora_layers(peft_model, adapters)
    if layers is None:
        return None
    model = peft_model.base_model.model
    rows = Rows(adapters)
    for layer in layers:
        packed = layer.base  # a layer none of these adapters targets: the bare linear
        if any(weights is not None for weights in layer.adapters):
            a, b, scalings = zip(*[weights or (None, None, 0.0) for weights in layer.adapters])
            packed = MultiLoraLinear(packed, list(a), list(b), list(scalings), rows)
        parent_name, _, child = layer.name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, packed)
    setattr(model, ROWS_ATTR, rows)
    return model.eval()


@contextmanager
def adapters_per_row(lm, adapter_names: list[str] | None) -> Iterator[list[str] | None]:
    """Decode batch row i with the adapter named ``adapter_names[i]`` (BASE_NAME: the bare base)
    inside the block. Yields what ``generate`` takes as peft's ``adapter_names``: the names
    themselves for a PeftModel, None for a packed model (its layers read the rows set here)."""
    rows = getattr(lm, ROWS_ATTR, None)
    if rows is None or adapter_names is None:
        yield adapter_names
        return
    unknown = sorted(set(adapter_names) - {BASE_NAME, *rows.names})
    if unknown:
        raise ValueError(f"no adapter named {', '.join(unknown)} in this model ({', '.join(rows.names)})")
    rows.set([BASE if n == BASE_NAME else rows.names.index(n) for n in adapter_names])
    try:
        yield None
    finally:
        rows.set([])
