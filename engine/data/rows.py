"""Dataset rows: loading a registered dataset's file and converting it to TRL's conversational format.

Rows are converted once, here, into TRL's *conversational* format (``{"prompt", "completion"}``
for SFT, ``{"prompt", "chosen", "rejected"}`` for preferences) so the trainers apply each model's
own chat template and we never hand-format prompts. The registry that names the files
(``dataset_info.json``) is engine.data.registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import STAGES, RunConfig
from engine.config.formats import ALPACA, DEFAULT_FORMAT, SHAREGPT, TRL
from engine.data.conversations import (
    answer,
    is_transcript,
    parse_transcript,
    read_messages,
    split_shared_prompt,
    split_shared_text,
    text,
)
from engine.data.reading import load_rows
from engine.data.registry import REGISTRY_FILE, DatasetError, read_registry, registry_path

if TYPE_CHECKING:  # datasets is heavy; import it only where rows are actually loaded
    import datasets

class IdenticalAnswersError(DatasetError):
    """A preference row whose chosen and rejected answers are the same text (a class of its own so
    a validation report can count these rows apart from other broken rows)."""


def _label(value: Any, where: str) -> bool:
    """A KTO label: true for a desirable answer, false for an undesirable one (csv: 1/0, true/false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise DatasetError(f"{where} should be true (desirable answer) or false (undesirable), not {value!r}")


def _alpaca(row: dict, info: dict) -> tuple[list[dict], tuple[str, ...]]:
    cols = info["columns"]
    messages: list[dict] = []
    system = text(row.get(cols.get("system") or ""), f"column {cols.get('system')!r}")
    if system.strip():
        messages.append({"role": "system", "content": system})
    history = row.get(cols.get("history") or "") or []
    for i, turn in enumerate(history, 1):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise DatasetError(f"column {cols['history']!r}: history item {i} must be a [user, assistant] pair")
        where = f"column {cols['history']!r} item {i}"
        messages += [{"role": "user", "content": text(turn[0], where)},
                     {"role": "assistant", "content": answer(turn[1], where)}]
    prompt = text(row.get(cols["prompt"]), f"column {cols['prompt']!r}")
    query = text(row.get(cols.get("query") or ""), f"column {cols.get('query')!r}")
    user = "\n".join(part for part in (prompt, query) if part.strip())
    if not user.strip():
        raise DatasetError(f"empty prompt: column {cols['prompt']!r} is empty")
    messages.append({"role": "user", "content": user})

    if not info.get("ranking"):
        return messages, (answer(row.get(cols["response"]), f"column {cols['response']!r}"),)
    if cols.get("chosen") and cols.get("rejected"):
        return messages, (answer(row.get(cols["chosen"]), f"column {cols['chosen']!r}"),
                          answer(row.get(cols["rejected"]), f"column {cols['rejected']!r}"))
    pair = row.get(cols["response"])
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise DatasetError(f"column {cols['response']!r} must hold a list [chosen, rejected] for a ranking "
                           "dataset (or map \"chosen\" and \"rejected\" in \"columns\")")
    return messages, (answer(pair[0], f"column {cols['response']!r}[0] (chosen)"),
                      answer(pair[1], f"column {cols['response']!r}[1] (rejected)"))


def _sharegpt(row: dict, info: dict) -> tuple[list[dict], tuple[str, ...]]:
    cols, tags = info["columns"], info["tags"]
    col = cols["messages"]
    turns = read_messages(row.get(col), tags, f"column {col!r}")
    system = text(row.get(cols.get("system") or ""), f"column {cols.get('system')!r}")
    if turns[0]["role"] == "system":
        system, turns = turns[0]["content"], turns[1:]
    if not turns:
        raise DatasetError(f"column {col!r} holds only a system message")
    messages = ([{"role": "system", "content": system}] if system.strip() else []) + turns

    if not info.get("ranking"):
        if turns[-1]["role"] != "assistant":
            raise DatasetError(f"column {col!r} must end with an assistant answer")
        return messages[:-1], (turns[-1]["content"],)
    if turns[-1]["role"] != "user":
        raise DatasetError(f"column {col!r} must end with the user's turn in a ranking dataset; "
                           "the answers belong in the chosen/rejected columns")
    chosen_col, rejected_col = cols.get("chosen", "chosen"), cols.get("rejected", "rejected")
    return messages, (answer(row.get(chosen_col), f"column {chosen_col!r}", tags["content_tag"]),
                      answer(row.get(rejected_col), f"column {rejected_col!r}", tags["content_tag"]))


def _trl_prompt(value: Any, tags: dict, where: str) -> list[dict]:
    """A TRL prompt: a string (standard) or a list of messages ending with the user (conversational)."""
    if isinstance(value, list):
        messages = read_messages(value, tags, where)
        if messages[-1]["role"] != "user":
            raise DatasetError(f"{where} must end with the user's turn")
        return messages
    prompt = text(value, where)
    if not prompt.strip():
        raise DatasetError(f"empty prompt: {where} is empty")
    return [{"role": "user", "content": prompt}]


def _whole_conversation(prompt: Any, answer_messages: list, tags: dict, where: str) -> list[dict]:
    """An answer given as a message list, with the prompt in front unless it already holds the user's
    turn (UltraFeedback repeats the prompt inside chosen and rejected; TRL's explicit form does not)."""
    if any(isinstance(m, dict) and m.get(tags["role_tag"]) == tags["user_tag"] for m in answer_messages):
        return read_messages(answer_messages, tags, where)
    if prompt is None:
        raise DatasetError(f"{where} holds no user turn and there is no prompt column to put before it")
    head = prompt if isinstance(prompt, list) else [{tags["role_tag"]: tags["user_tag"], tags["content_tag"]: prompt}]
    return read_messages([*head, *answer_messages], tags, f"prompt + {where}")


def _trl_pair(row: dict, info: dict) -> tuple[list[dict], tuple[str, ...]]:
    """TRL preference rows: explicit or implicit prompt, strings or message lists, HH transcripts."""
    cols, tags = info["columns"], info["tags"]
    chosen, rejected = row.get(cols["chosen"]), row.get(cols["rejected"])
    prompt = row.get(cols["prompt"]) if cols.get("prompt") else None
    where = f"columns {cols['chosen']!r}/{cols['rejected']!r}"
    if isinstance(chosen, list) or isinstance(rejected, list):
        pair = [_whole_conversation(prompt, value if isinstance(value, list) else [], tags, f"column {cols[k]!r}")
                for k, value in (("chosen", chosen), ("rejected", rejected))]
        messages, good, bad = split_shared_prompt(*pair, where)
        return messages, (good, bad)
    if prompt is not None:
        where_prompt = f"column {cols['prompt']!r}"
        return _trl_prompt(prompt, tags, where_prompt), (answer(chosen, f"column {cols['chosen']!r}"),
                                                         answer(rejected, f"column {cols['rejected']!r}"))
    if is_transcript(chosen) and is_transcript(rejected):
        messages, good, bad = split_shared_prompt(parse_transcript(chosen, f"column {cols['chosen']!r}"),
                                                  parse_transcript(rejected, f"column {cols['rejected']!r}"), where)
        return messages, (good, bad)
    shared, good, bad = split_shared_text(text(chosen, where), text(rejected, where))
    if not shared.strip():
        raise DatasetError(f"{where}: no prompt column and the two answers share no beginning to use as the prompt")
    return [{"role": "user", "content": shared}], (answer(good, f"column {cols['chosen']!r}"),
                                                   answer(bad, f"column {cols['rejected']!r}"))


def _trl(row: dict, info: dict) -> tuple[list[dict], tuple[str, ...]]:
    """TRL's dataset types (https://huggingface.co/docs/trl/dataset_formats): preference, conversational
    language modelling (``messages``) and prompt/completion, standard or conversational."""
    cols, tags = info["columns"], info["tags"]
    if info.get("ranking"):
        return _trl_pair(row, info)
    if cols.get("messages"):
        col = cols["messages"]
        turns = read_messages(row.get(col), tags, f"column {col!r}")
        if turns[-1]["role"] != "assistant":
            raise DatasetError(f"column {col!r} must end with an assistant answer")
        return turns[:-1], (turns[-1]["content"],)
    prompt = _trl_prompt(row.get(cols["prompt"]), tags, f"column {cols['prompt']!r}")
    return prompt, (answer(row.get(cols["response"]), f"column {cols['response']!r}", tags["content_tag"]),)


def row_kind(info: dict) -> str:
    """What a registry entry's rows are: "pairs" (chosen/rejected), "unpaired" (an answer and a KTO
    label), "text" (plain text to model) or "sft" (a prompt and its answer)."""
    cols = info.get("columns") or {}
    if info.get("ranking"):
        return "pairs"
    if cols.get("kto_tag"):
        return "unpaired"
    if info.get("formatting") == TRL and cols.get("text") and not (cols.get("messages") or cols.get("response")):
        return "text"
    return "sft"


READERS = {ALPACA: _alpaca, SHAREGPT: _sharegpt, TRL: _trl}  # one per formatting of engine.config.formats


def to_conversation(row: dict, info: dict, ranking_required: bool) -> dict:
    """Convert one raw row to TRL's format: conversational wherever there is a prompt.

    SFT rows become ``{"prompt": [...], "completion": [...]}`` (a ranking row contributes its
    chosen answer): the prompt/completion split lets TRL train on the answer tokens only with
    any chat template, even ones without generation markers (SmolLM2's has none);
    preference rows become ``{"prompt": [...], "chosen": [...], "rejected": [...]}``; unpaired
    (KTO) rows ``{"prompt", "completion", "label"}``; plain text ``{"text": str}``.
    Raises DatasetError naming the column at fault; the caller adds the row number.
    """
    kind, cols = row_kind(info), info["columns"]
    if ranking_required and kind not in ("pairs", "unpaired"):
        raise DatasetError("preference training needs answer pairs: set \"ranking\": true on the dataset "
                           "and provide chosen/rejected answers")
    if kind == "text":
        value = text(row.get(cols["text"]), f"column {cols['text']!r}")
        if not value.strip():
            raise DatasetError(f"column {cols['text']!r} is empty")
        return {"text": value}
    prompt, answers = READERS[info.get("formatting", DEFAULT_FORMAT)](row, info)
    if kind == "unpaired":
        label = _label(row.get(cols["kto_tag"]), f"column {cols['kto_tag']!r}")
        return {"prompt": prompt, "completion": [{"role": "assistant", "content": answers[0]}], "label": label}
    if not ranking_required:
        return {"prompt": prompt, "completion": [{"role": "assistant", "content": answers[0]}]}
    chosen, rejected = answers
    if chosen.strip() == rejected.strip():
        raise IdenticalAnswersError("chosen and rejected answers are identical, so there is nothing to prefer; "
                           "fix or remove the row")
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def load_dataset_for_stage(name: str, dataset_dir: str | Path, preference: bool,
                           max_samples: int | None = None) -> datasets.Dataset:
    """Registry name -> converted Dataset holding only the conversational columns.

    ``preference=True`` (DPO and friends) requires pairs (``"ranking": true``) or unpaired rows;
    which stage may train on which rows is stage_can_train's rule. Errors carry the dataset name and
    the 1-based row number so the user can find the bad line.
    """
    from datasets import Dataset

    registry = read_registry(dataset_dir)
    if name not in registry:
        names = ", ".join(sorted(registry)) or "none"
        raise DatasetError(f"unknown dataset {name!r} in {registry_path(dataset_dir)}; registered: {names}")
    info = registry[name]
    kind = row_kind(info)
    if preference and kind not in ("pairs", "unpaired"):
        raise DatasetError(f"dataset {name!r} is not a preference dataset: set \"ranking\": true in its "
                           f"{REGISTRY_FILE} entry (with chosen/rejected answers) or choose a ranking dataset")
    if max_samples is not None and max_samples < 1:
        raise DatasetError(f"max_samples must be at least 1, got {max_samples}")
    rows = load_rows(info, dataset_dir)
    if max_samples is not None:
        rows = rows.select(range(min(max_samples, len(rows))))
    converted = []
    for number, row in enumerate(rows, 1):
        try:
            converted.append(to_conversation(row, info, preference))
        except DatasetError as exc:
            raise DatasetError(f"dataset {name!r}, row {number}: {exc}") from None
    if not converted:
        raise DatasetError(f"dataset {name!r} has no rows ({Path(dataset_dir) / info['file_name']})")
    return Dataset.from_list(converted)


def split_train_eval(ds: datasets.Dataset, val_size: float,
                     seed: int) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Carve an eval split off the training data when no eval dataset is given.

    ``val_size`` below 1 is a fraction (at least one row), 1 or more an absolute row count,
    0 means no eval split. Seeded so reruns compare like with like.
    """
    if not val_size or val_size <= 0:
        return ds, None
    if val_size < 1:
        n_eval = max(1, round(len(ds) * val_size))
    elif float(val_size).is_integer():
        n_eval = int(val_size)
    else:
        raise DatasetError(f"val_size {val_size} must be a fraction below 1 or a whole number of rows")
    if n_eval >= len(ds):
        raise DatasetError(f"val_size {val_size} leaves no training rows out of {len(ds)}; lower it")
    parts = ds.train_test_split(test_size=n_eval, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


KIND_WORDS = {"pairs": 'chosen/rejected pairs ("ranking": true)', "sft": "prompts with their answers",
              "unpaired": "unpaired rows (an answer and a desirable/undesirable label)",
              "text": "plain text (no prompts)"}


def stage_can_train(stage: str, info: dict, loss_type: str | None = None) -> str:
    """'' if the stage trains on the registry entry's rows, else why not (naming what it needs).
    Unpaired rows train only the KTO loss."""
    kind, wanted = row_kind(info), STAGES[stage].row_kinds
    if kind == "unpaired" and loss_type not in (None, "kto"):
        return f"it holds {KIND_WORDS[kind]}, which only dpo.loss_type kto trains on (not {loss_type})"
    if kind not in wanted:
        return f"it holds {KIND_WORDS[kind]}, and {stage} trains on " + " or ".join(KIND_WORDS[k] for k in wanted)
    return ""


def _check_stage_data(cfg: RunConfig) -> None:
    registry = read_registry(cfg.data.dataset_dir)
    loss = getattr(cfg.stage_options, "loss_type", None)
    for key, name in (("data.dataset", cfg.data.dataset), ("data.eval_dataset", cfg.data.eval_dataset)):
        why = stage_can_train(cfg.stage, registry[name], loss) if name in registry else ""
        if why:
            raise DatasetError(f"{key}: dataset {name!r} cannot train {cfg.stage}: {why}")


def load_splits(cfg: RunConfig, preference: bool):
    """A run's (train, eval or None) in TRL's conversational format: its data.eval_dataset, else
    val_size split off the training rows (the same split whoever asks, for the same seed)."""
    d = cfg.data
    _check_stage_data(cfg)
    train = load_dataset_for_stage(d.dataset, d.dataset_dir, preference, d.max_samples)
    if d.eval_dataset:
        return train, load_dataset_for_stage(d.eval_dataset, d.dataset_dir, preference)
    return split_train_eval(train, d.val_size, cfg.training.seed)
