"""DPO's pairs scored with each prompt encoded once, and without padding between pairs.

TRL's DPOTrainer scores a batch of B pairs as 2B right-padded rows, [prompt + chosen; prompt +
rejected]: every prompt passes through the model twice (policy forward, backward and reference
forward), and about 30% of the positions are padding. Here each pair becomes one segment

    prompt · chosen · last prompt token again · rejected

whose rejected branch restarts its positions where the prompt ends and, through the attention
mask, sees the prompt but not the chosen answer. Every scored token then has the same token,
position and visible context as in TRL's rows, so its log-probability is the same up to float
rounding (tests/engine/stages/test_shared_prompt.py compares them). The repeated last prompt token
gives the rejected answer's first token a predicting position of its own. Segments are packed into
as few rows as the longest segment allows, so attention never spans more than TRL's rows would.

The packed forward runs inside the model call TRL makes (``model(input_ids, attention_mask,
labels, fused_lm_head=True)``, for the policy and for the reference) and answers in TRL's layout,
so its losses, metrics and reference handling are untouched. A batch it cannot share (an odd row
count, a pair whose rows differ in the prompt, an empty answer) or a model outside ``FAMILIES``
takes TRL's own forward.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import torch

from engine import seams

# Decoder-only families with rotary positions and one causal mask for every layer: for them,
# position ids plus a custom 4D mask reproduce any row's context exactly.
FAMILIES = {"llama", "mistral", "qwen2", "qwen3", "phi3", "olmo2", "granite", "gemma", "smollm3"}
MASKS = {"sdpa", "eager"}  # attention kernels that take a custom 4D mask as it is
PER_TOKEN = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


@dataclass
class Pair:
    row: int      # its chosen row in TRL's batch (the rejected row is row + B)
    prompt: list  # token ids
    chosen: list
    rejected: list

    @property
    def length(self) -> int:
        return len(self.prompt) + len(self.chosen) + 1 + len(self.rejected)


@dataclass
class Packed:
    input_ids: torch.Tensor     # (rows, width)
    position_ids: torch.Tensor  # (rows, width)
    shift_labels: torch.Tensor  # (rows, width): the next token of each position's own branch, or -100
    visible: torch.Tensor       # (rows, 1, width, width) bool: query may attend to key
    source: torch.Tensor        # flat packed positions of TRL's scored positions, in TRL's order
    target: torch.Tensor        # TRL's scored positions (bool, (2B, length - 1))


def pairs_of(input_ids: torch.Tensor, labels: torch.Tensor) -> list[Pair] | None:
    """The batch's pairs, or None when its rows are not [prompt + chosen; prompt + rejected] pairs
    with a non-empty prompt and answers (then TRL's own layout scores it)."""
    rows = input_ids.size(0)
    if rows % 2:
        return None
    answers = []
    for ids, answer in zip(input_ids.tolist(), (labels != -100).tolist()):
        if True not in answer:
            return None
        start = answer.index(True)
        end = start + sum(answer)
        if not all(answer[start:end]):  # scored positions must be one run: prompt, then answer
            return None
        answers.append((ids[:start], ids[start:end]))
    pairs = []
    for row in range(rows // 2):
        (prompt, chosen), (other_prompt, rejected) = answers[row], answers[row + rows // 2]
        if not prompt or prompt != other_prompt:
            return None
        pairs.append(Pair(row, prompt, chosen, rejected))
    return pairs


def bins(pairs: list[Pair]) -> list[list[Pair]]:
    """First-fit decreasing: pairs into rows no wider than the longest segment."""
    width = max(pair.length for pair in pairs)
    rows: list[list[Pair]] = []
    for pair in sorted(pairs, key=lambda p: p.length, reverse=True):
        row = next((r for r in rows if sum(p.length for p in r) + pair.length <= width), None)
        if row is None:
            rows.append([pair])
        else:
            row.append(pair)
    return rows


def segment(pair: Pair, offset: int) -> tuple[list, list, list, list, list]:
    """One pair's tokens, positions, next-token labels, branch (0 prompt, 1 chosen, 2 rejected) and
    the packed offsets that predict the chosen and then the rejected answer's tokens."""
    p, c, r = len(pair.prompt), len(pair.chosen), len(pair.rejected)
    tokens = pair.prompt + pair.chosen + pair.prompt[-1:] + pair.rejected
    positions = [*range(p + c), *range(p - 1, p + r)]
    labels = [-100] * (p - 1) + pair.chosen + [-100] + pair.rejected + [-100]
    branch = [0] * p + [1] * c + [2] * (1 + r)
    predicting = [offset + i for i in range(p - 1, p + c - 1)] + [offset + i for i in range(p + c, p + c + r)]
    return tokens, positions, labels, branch, predicting


def visibility(branch: torch.Tensor, pair_id: torch.Tensor, last_prompt: torch.Tensor) -> torch.Tensor:
    """(width, width) mask of one row: causal, within a pair, and the rejected branch (the repeated
    prompt token included) sees neither the chosen answer nor the original last prompt token."""
    width = branch.numel()
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    same_pair = pair_id[:, None] == pair_id[None, :]
    rejected_query = (branch == 2)[:, None]
    hidden_key = (branch == 1)[None, :] | last_prompt[None, :]
    mask = causal & same_pair & ~(rejected_query & hidden_key)
    return mask | torch.eye(width, dtype=torch.bool)  # padding sees itself: no all-masked row


def pack(pairs: list[Pair], shape: torch.Size, pad_id: int) -> Packed:
    rows = bins(pairs)
    width = max(sum(p.length for p in row) for row in rows)
    columns = {name: [] for name in ("ids", "pos", "lab", "branch", "pair", "last")}
    chosen_src, rejected_src = {}, {}
    for r, row in enumerate(rows):
        line = {name: [] for name in columns}
        for pair in row:
            tokens, positions, labels, branch, predicting = segment(pair, r * width + len(line["ids"]))
            chosen_src[pair.row], rejected_src[pair.row] = predicting[:len(pair.chosen)], predicting[len(pair.chosen):]
            last = [False] * len(tokens)
            last[len(pair.prompt) - 1] = True
            for name, values in zip(line, (tokens, positions, labels, branch, [pair.row] * len(tokens), last)):
                line[name] += values
        pad = width - len(line["ids"])
        for name, filler in zip(line, (pad_id, 0, -100, 0, -1, False)):
            columns[name].append(line[name] + [filler] * pad)
    half = shape[0] // 2
    target = torch.zeros(shape[0], shape[1] - 1, dtype=torch.bool)
    order = []
    for row in range(shape[0]):  # TRL's scored positions, row by row, left to right
        src = chosen_src[row] if row < half else rejected_src[row - half]
        start = len(pairs[row % half].prompt) - 1
        target[row, start:start + len(src)] = True
        order += src
    pair_id = torch.tensor(columns["pair"])
    branch, last = torch.tensor(columns["branch"]), torch.tensor(columns["last"])
    visible = torch.stack([visibility(branch[i], pair_id[i], last[i]) for i in range(len(rows))])
    return Packed(torch.tensor(columns["ids"]), torch.tensor(columns["pos"]), torch.tensor(columns["lab"]),
                  visible[:, None], torch.tensor(order), target)


def attention_mask(visible: torch.Tensor, implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """sdpa takes a bool mask (True: attend); eager adds the mask to the scores."""
    if implementation == "sdpa":
        return visible
    return torch.zeros(visible.shape, dtype=dtype).masked_fill(~visible, torch.finfo(dtype).min)


def unpack(output, packed: Packed):
    """The packed forward's per-token fields in TRL's layout: zero where TRL's label is -100."""
    values = {}
    for f in fields(output):
        value = getattr(output, f.name)
        if f.name in PER_TOKEN and value is not None:
            flat = value.reshape(-1)[packed.source.to(value.device)]
            value = value.new_zeros(packed.target.shape).masked_scatter(packed.target.to(value.device), flat)
        values[f.name] = value
    return type(output)(**values)


def shareable(module) -> bool:
    config = module.config
    return (config.model_type in FAMILIES and seams.attention_kind(config) in MASKS
            and not getattr(config, "sliding_window", None) and not getattr(config, "use_sliding_window", False))


def share_prompts(module) -> bool:
    """Wrap the fused-LM-head forward TRL gave ``module`` so a DPO batch is scored packed; returns
    whether it was (a model outside FAMILIES keeps TRL's forward)."""
    if not shareable(module) or getattr(module.forward, "shares_prompts", False):
        return False
    fused = module.forward
    pad_id = module.config.pad_token_id if module.config.pad_token_id is not None else 0

    @functools.wraps(fused)
    def forward(*args, fused_lm_head=False, labels=None, input_ids=None, attention_mask=None, **kwargs):
        pairs = None
        if fused_lm_head and not args and labels is not None and input_ids is not None and "position_ids" not in kwargs:
            pairs = pairs_of(input_ids, labels)  # right-padded rows: each prompt starts at position 0
        if pairs is None:
            return fused(*args, fused_lm_head=fused_lm_head, labels=labels, input_ids=input_ids,
                         attention_mask=attention_mask, **kwargs)
        packed = pack(pairs, input_ids.shape, pad_id)
        device = input_ids.device
        mask = attention_mask_for(module, packed, device)
        output = fused(input_ids=packed.input_ids.to(device), position_ids=packed.position_ids.to(device),
                       attention_mask=mask, shift_labels=packed.shift_labels.to(device), fused_lm_head=True,
                       **kwargs)
        return unpack(output, packed)

    forward.shares_prompts = True
    module.forward = forward
    return True


def attention_mask_for(module, packed: Packed, device) -> torch.Tensor:
    dtype = next(module.parameters()).dtype
    return attention_mask(packed.visible, seams.attention_kind(module.config), dtype).to(device)


def share_trainer_prompts(trainer) -> bool:
    """Packed scoring for a DPOTrainer's policy and, with full fine-tuning, its frozen reference (the
    modules TRL gave a fused LM head); returns whether the policy's forward is now packed."""
    from accelerate.utils import is_peft_model

    policy = trainer.accelerator.unwrap_model(trainer.model)
    shared = share_prompts(policy.get_base_model() if is_peft_model(policy) else policy)
    if trainer.ref_model is not None:
        share_prompts(trainer.accelerator.unwrap_model(trainer.ref_model))
    return shared
