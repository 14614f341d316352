"""DPO's reference log-probs, computed once and kept on disk for every later run that needs them.

The reference model is frozen, so its log-probs of a pair depend only on its weights and on the
pair's tokens. TRL's ``precompute_ref_log_probs`` scores the whole dataset once before training;
its own cache is keyed by the dataset's fingerprint inside the datasets cache, which an in-memory
dataset (every run here) does not keep between processes. This cache is keyed by what the numbers
really depend on:

    the reference weights   every frozen parameter the reference forward uses (the base model, a
                            parent's adapter kept as TRL's "ref" adapter, or the frozen full copy),
                            hashed by value: a new base, parent or quantisation is a new key
    the tokens              the tokenized prompt/chosen/rejected columns (template, dataset, rows,
                            order and cutoff are all in them) and the collator's max_length
    how they are scored     the precision flags, the device type, ld_alpha and library versions

so a second epoch, a rerun, or a sweep over beta, learning rate or loss type on the same SFT
parent reuses the first run's pass (``saves/cache/reference/<key>.json``). A cache that cannot be
read or written is only logged: the run computes the numbers instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch

from engine import seams
from engine.files import atomic_write
from engine.paths import reference_cache_dir
from engine.stages import ranks

log = logging.getLogger("engine")
FORMAT = 2  # bump when the way reference log-probs are computed changes (2: 8-bit bases score on one path)
COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


def weights_digest(module, part: str = "all") -> str:
    """sha256 over the names, dtypes, shapes and values of the module's parameters and buffers;
    ``part`` "frozen": the frozen parameters and the buffers; "trained": the trainable parameters alone
    (a distributed run's ranks log it: equal digests, ranks in step)."""
    digest = hashlib.sha256()
    tensors = [(n, p) for n, p in module.named_parameters() if part == "all" or p.requires_grad == (part == "trained")]
    buffers = [] if part == "trained" else list(module.named_buffers())
    for name, tensor in [*tensors, *buffers]:
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        data = tensor.detach().to("cpu").contiguous()
        digest.update(data.view(torch.uint8).numpy() if data.numel() else b"")
    return digest.hexdigest()


def tokens_digest(dataset) -> str:
    """sha256 over the tokenized columns, row lengths included (so [1, 2][3] differs from [1][2, 3])."""
    import pyarrow.compute as pc

    digest = hashlib.sha256()
    table = dataset.with_format("arrow")[:]
    for name in COLUMNS:
        column = table.column(name)
        digest.update(pc.list_value_length(column).to_numpy(zero_copy_only=False).astype("int64").tobytes())
        digest.update(pc.list_flatten(column).to_numpy(zero_copy_only=False).astype("int64").tobytes())
    return digest.hexdigest()


def reference_digest(trainer) -> str:
    """The digest of the weights the trainer's reference forward uses, hashed once per trainer (the
    train and eval splits are scored one after the other, on the same frozen weights)."""
    from accelerate.utils import is_peft_model

    if getattr(trainer, "workbench_reference_digest", None) is None:
        model = trainer.accelerator.unwrap_model(trainer.model)
        if trainer.ref_model is not None:  # a frozen copy
            digest = weights_digest(trainer.accelerator.unwrap_model(trainer.ref_model))
        elif is_peft_model(model):  # the base, and a parent's adapter kept as "ref": all but the trained adapter
            digest = weights_digest(model, part="frozen")
        else:  # full fine-tuning: the model before its first step
            digest = weights_digest(model)
        trainer.workbench_reference_digest = digest
    return trainer.workbench_reference_digest


def cache_key(trainer, dataset) -> dict:
    """What the reference log-probs of ``dataset`` depend on, as readable parts."""
    import transformers
    import trl

    collator = trainer.data_collator
    return {
        "format": FORMAT,
        "weights": reference_digest(trainer),
        "tokens": tokens_digest(dataset),
        "rows": len(dataset),
        "max_length": getattr(collator, "max_length", None),
        "truncation_mode": getattr(collator, "truncation_mode", None),
        "bf16": bool(trainer.args.bf16), "fp16": bool(trainer.args.fp16),
        "device": trainer.accelerator.device.type,
        "ld_alpha": trainer.ld_alpha,
        "versions": [torch.__version__, transformers.__version__, trl.__version__],
    }


def key_file(parts: dict) -> Path:
    name = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]
    return reference_cache_dir() / f"{name}.json"


def load(path: Path, parts: dict) -> tuple[list, list] | None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") != parts or len(saved["chosen"]) != parts["rows"] != len(saved["rejected"]):
            return None
        return saved["chosen"], saved["rejected"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("reference log-probs cache %s unreadable (%s): computing them again", path.name, e)
        return None


def store(path: Path, parts: dict, chosen: list, rejected: list) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"key": parts, "chosen": chosen, "rejected": rejected}))
    except OSError as e:
        log.warning("reference log-probs not cached (%s): the next run computes them again", e)


def cached_reference_logps(trainer, dataset, name: str, compute, batch_size: int, cache: bool = True):
    """``dataset`` with ref_chosen_logps / ref_rejected_logps columns, from the cache or from
    ``compute(dataset)`` (TRL's precompute), which then fills the cache (``cache`` False: neither).

    Under several ranks rank 0 alone reads and writes the cache and tells the others what it found,
    so all of them compute together or none does; they score the pairs in shares (scored_by_ranks)."""
    if len(dataset) == 0:  # every row truncated away: train_and_save says what to change
        return with_columns(dataset, [], [])
    parts = cache_key(trainer, dataset) if cache else None
    path = key_file(parts) if cache else None
    found = load(path, parts) if ranks.is_main() and cache else None
    if ranks.distributed() and cache:
        from accelerate.utils import broadcast_object_list

        found = broadcast_object_list([found], from_process=0)[0]
    if found is not None:
        log.info("reference log-probs of the %d %s pairs: reused from %s", len(dataset), name, path)
        return with_columns(dataset, *found)
    start = time.perf_counter()
    if ranks.distributed():
        chosen, rejected = scored_by_ranks(trainer, dataset, batch_size)
        scored = with_columns(dataset, chosen, rejected)
    else:
        scored = compute(dataset)
        chosen, rejected = (list(scored[column]) for column in ("ref_chosen_logps", "ref_rejected_logps"))
    if ranks.is_main():
        if cache:
            store(path, parts, chosen, rejected)
        log.info("reference log-probs of the %d %s pairs: computed in %.1f s%s", len(dataset), name,
                 time.perf_counter() - start, f", cached as {path}" if cache else "")
    return scored


def scored_by_ranks(trainer, dataset, batch_size: int) -> tuple[list, list]:
    """TRL's precompute loop, each rank scoring its share of the batches and all gathering every score,
    in order, without TRL's arrow file: an in-memory dataset's file lands in a temporary folder of its
    own process, where the other ranks cannot read it."""
    from torch.utils.data import DataLoader

    loader = trainer.accelerator.prepare(DataLoader(dataset, batch_size=batch_size, collate_fn=trainer.data_collator,
                                                    shuffle=False))
    if trainer.ref_model is None and trainer.is_deepspeed_enabled:  # ZeRO: TRL's inference engine, as TRL does
        model = seams.reference_engine(trainer)
    else:
        model = trainer.ref_model or trainer.model
    chosen, rejected = [], []
    for batch in loader:
        scores = trainer.accelerator.gather_for_metrics(trainer.compute_ref_log_probs(model, batch))
        chosen += scores[0].float().cpu().tolist()
        rejected += scores[1].float().cpu().tolist()
    return chosen, rejected


def with_columns(dataset, chosen: list, rejected: list):
    """``dataset`` plus the two float32 columns TRL's precompute adds."""
    from datasets import Dataset, Features, Value, concatenate_datasets

    features = Features({"ref_chosen_logps": Value("float32"), "ref_rejected_logps": Value("float32")})
    scores = Dataset.from_dict({"ref_chosen_logps": chosen, "ref_rejected_logps": rejected}, features=features)
    return concatenate_datasets([dataset, scores], axis=1)

