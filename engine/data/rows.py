"""Dataset rows: loading a registered dataset's file and converting it to TRL's conversational format.

Rows are converted once, here, into TRL's *conversational* format (``{"prompt", "completion"}``
for SFT, ``{"prompt", "chosen", "rejected"}`` for preferences) so the trainers apply each model's
own chat template and we never hand-format prompts. The registry that names the files
(``dataset_info.json``) is engine.data.registry.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import RunConfig
from engine.data.registry import REGISTRY_FILE, DatasetError, read_registry, registry_path

if TYPE_CHECKING:  # datasets is heavy; import it only where rows are actually loaded
    import datasets

LOADERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


class IdenticalAnswersError(DatasetError):
    """A preference row whose chosen and rejected answers are the same text (a class of its own so
    a validation report can count these rows apart from other broken rows)."""


def load_rows(info: dict, dataset_dir: str | Path) -> datasets.Dataset:
    """Load the raw rows of one registry entry: a json/jsonl/csv/parquet file or a folder of them."""
    from datasets import load_dataset

    file_name = info.get("file_name")
    if not file_name:
        raise DatasetError("registry entry has no \"file_name\"; only local files are supported, so add "
                           "\"file_name\" relative to the dataset folder")
    path = Path(dataset_dir) / file_name
    if not path.exists():
        raise DatasetError(f"data file not found: {path} (check \"file_name\" in {REGISTRY_FILE})")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in LOADERS) if path.is_dir() else [path]
    kinds = {LOADERS.get(p.suffix.lower()) for p in files}
    if not files or None in kinds:
        raise DatasetError(f"{path}: expected {', '.join(LOADERS)} file(s)")
    if len(kinds) > 1:
        raise DatasetError(f"{path}: mixes file types {sorted(kinds)}; keep one type per dataset folder")
    kind = kinds.pop()
    try:
        return load_dataset(kind, data_files=[str(p) for p in files], split="train")
    except Exception as exc:  # datasets raises many types; the user needs the file and the cause
        where = _json_error(files) if kind == "json" else None
        raise DatasetError(where or f"could not read {path}: {exc}") from exc


def _json_error(files: list[Path]) -> str | None:
    """'name.jsonl, line 3: not valid JSON (...)' for the first bad line or document, because
    pyarrow's parse errors give a byte position in a block, which no one can act on."""
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        try:
            json.loads(text)
            continue  # one JSON document (a list of rows): valid
        except json.JSONDecodeError as whole:
            first_error = whole
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as e:
                    if file.suffix.lower() == ".jsonl" or number > 1:
                        return f"{file.name}, line {number}: not valid JSON ({e.msg}, column {e.colno}); fix or remove the line"
                    break
        return f"{file.name}, line {first_error.lineno}: not valid JSON ({first_error.msg}, column {first_error.colno})"
    return None


def _text(value: Any, where: str) -> str:
    """Cell value as text; None/NaN (csv blanks) become ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, dict)):
        raise DatasetError(f"{where} should be text but holds {type(value).__name__}")
    return str(value)


def _answer(value: Any, where: str, content_key: str = "content") -> str:
    """An answer given as a string or as a message dict (``{"content": ...}`` / the content tag)."""
    if isinstance(value, dict):
        value = value.get(content_key, value.get("content"))
    text = _text(value, where)
    if not text.strip():
        raise DatasetError(f"empty answer in {where}")
    return text


def _alpaca(row: dict, info: dict) -> tuple[list[dict], tuple[str, ...]]:
    cols = info["columns"]
    messages: list[dict] = []
    system = _text(row.get(cols.get("system") or ""), f"column {cols.get('system')!r}")
    if system.strip():
        messages.append({"role": "system", "content": system})
    history = row.get(cols.get("history") or "") or []
    for i, turn in enumerate(history, 1):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise DatasetError(f"column {cols['history']!r}: history item {i} must be a [user, assistant] pair")
        where = f"column {cols['history']!r} item {i}"
        messages += [{"role": "user", "content": _text(turn[0], where)},
                     {"role": "assistant", "content": _answer(turn[1], where)}]
    prompt = _text(row.get(cols["prompt"]), f"column {cols['prompt']!r}")
    query = _text(row.get(cols.get("query") or ""), f"column {cols.get('query')!r}")
    user = "\n".join(part for part in (prompt, query) if part.strip())
    if not user.strip():
        raise DatasetError(f"empty prompt: column {cols['prompt']!r} is empty")
    messages.append({"role": "user", "content": user})

    if not info.get("ranking"):
        return messages, (_answer(row.get(cols["response"]), f"column {cols['response']!r}"),)
    if cols.get("chosen") and cols.get("rejected"):
        return messages, (_answer(row.get(cols["chosen"]), f"column {cols['chosen']!r}"),
                          _answer(row.get(cols["rejected"]), f"column {cols['rejected']!r}"))
    pair = row.get(cols["response"])
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise DatasetError(f"column {cols['response']!r} must hold a list [chosen, rejected] for a ranking "
                           "dataset (or map \"chosen\" and \"rejected\" in \"columns\")")
    return messages, (_answer(pair[0], f"column {cols['response']!r}[0] (chosen)"),
                      _answer(pair[1], f"column {cols['response']!r}[1] (rejected)"))


def _sharegpt(row: dict, info: dict) -> tuple[list[dict], tuple[str, ...]]:
    cols, tags = info["columns"], info["tags"]
    col = cols["messages"]
    raw = row.get(col)
    if not isinstance(raw, list) or not raw:
        raise DatasetError(f"column {col!r} must be a non-empty list of messages")
    roles = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant", tags["system_tag"]: "system"}
    system = _text(row.get(cols.get("system") or ""), f"column {cols.get('system')!r}")
    turns: list[dict] = []
    for i, msg in enumerate(raw, 1):
        tag = msg.get(tags["role_tag"]) if isinstance(msg, dict) else None
        if tag in (tags["observation_tag"], tags["function_tag"]):
            raise DatasetError(f"column {col!r} message {i}: tool/function-call turns ({tag!r}) are not supported")
        if tag not in roles:
            raise DatasetError(f"column {col!r} message {i}: role {tag!r} is not one of {sorted(roles)} "
                               f"(set \"tags\" in {REGISTRY_FILE} if your data uses other names)")
        content = _text(msg.get(tags["content_tag"]), f"column {col!r} message {i}")
        if not content.strip():
            raise DatasetError(f"column {col!r} message {i} is empty")
        if roles[tag] == "system":
            if i != 1:
                raise DatasetError(f"column {col!r} message {i}: a system message may only come first")
            system = content
            continue
        expected = "user" if len(turns) % 2 == 0 else "assistant"
        if roles[tag] != expected:
            raise DatasetError(f"column {col!r} message {i}: expected a {expected} turn, turns must alternate "
                               "user/assistant starting with the user")
        turns.append({"role": roles[tag], "content": content})
    messages = ([{"role": "system", "content": system}] if system.strip() else []) + turns

    if not info.get("ranking"):
        if turns[-1]["role"] != "assistant":
            raise DatasetError(f"column {col!r} must end with an assistant answer")
        return messages[:-1], (turns[-1]["content"],)
    if turns[-1]["role"] != "user":
        raise DatasetError(f"column {col!r} must end with the user's turn in a ranking dataset; "
                           "the answers belong in the chosen/rejected columns")
    chosen_col, rejected_col = cols.get("chosen", "chosen"), cols.get("rejected", "rejected")
    return messages, (_answer(row.get(chosen_col), f"column {chosen_col!r}", tags["content_tag"]),
                      _answer(row.get(rejected_col), f"column {rejected_col!r}", tags["content_tag"]))


def to_conversation(row: dict, info: dict, ranking_required: bool) -> dict:
    """Convert one raw row to TRL's conversational format.

    SFT rows become ``{"prompt": [...], "completion": [...]}`` (a ranking row contributes its
    chosen answer): the prompt/completion split lets TRL train on the answer tokens only with
    any chat template, even ones without generation markers (SmolLM2's has none);
    preference rows become ``{"prompt": [...], "chosen": [...], "rejected": [...]}``.
    Raises DatasetError naming the column at fault; the caller adds the row number.
    """
    if ranking_required and not info.get("ranking"):
        raise DatasetError("preference training needs answer pairs: set \"ranking\": true on the dataset "
                           "and provide chosen/rejected answers")
    convert = _sharegpt if info.get("formatting") == "sharegpt" else _alpaca
    prompt, answers = convert(row, info)
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

    ``preference=True`` (DPO and friends) requires ``"ranking": true``. Errors carry the dataset
    name and the 1-based row number so the user can find the bad line.
    """
    from datasets import Dataset

    registry = read_registry(dataset_dir)
    if name not in registry:
        names = ", ".join(sorted(registry)) or "none"
        raise DatasetError(f"unknown dataset {name!r} in {registry_path(dataset_dir)}; registered: {names}")
    info = registry[name]
    if preference and not info["ranking"]:
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


def load_splits(cfg: RunConfig, preference: bool):
    """A run's (train, eval or None) in TRL's conversational format: its data.eval_dataset, else
    val_size split off the training rows (the same split whoever asks, for the same seed)."""
    d = cfg.data
    train = load_dataset_for_stage(d.dataset, d.dataset_dir, preference, d.max_samples)
    if d.eval_dataset:
        return train, load_dataset_for_stage(d.eval_dataset, d.dataset_dir, preference)
    return split_train_eval(train, d.val_size, cfg.training.seed)
