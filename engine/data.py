"""Dataset registry and conversion to TRL's conversational format.

Datasets are registered in a LLaMA-Factory style ``dataset_info.json`` because that schema
(alpaca / sharegpt, ``ranking``, ``columns``, ``tags``) is what most public alignment data
already ships with. Rows are converted once, here, into TRL's *conversational* format
(``{"prompt", "completion"}`` for SFT, ``{"prompt", "chosen", "rejected"}`` for preferences) so the
trainers apply each model's own chat template and we never hand-format prompts.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # datasets is heavy; import it only where rows are actually loaded
    import datasets

REGISTRY_FILE = "dataset_info.json"
LOADERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
FORMATTINGS = ("alpaca", "sharegpt")
# LLaMA-Factory's defaults; columns that a row lacks are simply skipped.
DEFAULT_COLUMNS = {
    "alpaca": {"prompt": "instruction", "query": "input", "response": "output",
               "system": "system", "history": "history"},
    "sharegpt": {"messages": "conversations", "system": "system", "tools": "tools"},
}
DEFAULT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


class DatasetError(ValueError):
    """A dataset problem the user can fix; the message says what to change and where."""


class IdenticalAnswersError(DatasetError):
    """A preference row whose chosen and rejected answers are the same text (a class of its own so
    a validation report can count these rows apart from other broken rows)."""


def _registry_path(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / REGISTRY_FILE


def _normalize(name: str, entry: Any, path: Path) -> dict:
    """Fill in LLaMA-Factory defaults so the rest of the code never has to guess."""
    if not isinstance(entry, dict):
        raise DatasetError(f"{path}: entry {name!r} must be a JSON object with at least \"file_name\"")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        raise DatasetError(f"{path}: dataset {name!r} has formatting {formatting!r}; use \"alpaca\" or \"sharegpt\"")
    for key in ("columns", "tags"):
        if not isinstance(entry.get(key) or {}, dict):
            raise DatasetError(f"{path}: dataset {name!r}: \"{key}\" must be a JSON object")
    info = dict(entry)
    info["formatting"] = formatting
    info["ranking"] = bool(entry.get("ranking", False))
    info["columns"] = {**DEFAULT_COLUMNS[formatting], **(entry.get("columns") or {})}
    info["tags"] = {**DEFAULT_TAGS, **(entry.get("tags") or {})}
    return info


def normalize_entry(entry: Any, name: str = "new dataset") -> dict:
    """A registry entry with LLaMA-Factory's defaults filled in, as read_registry returns it."""
    return _normalize(name, entry, Path(REGISTRY_FILE))


def read_registry(dataset_dir: str | Path) -> dict[str, dict]:
    """Read ``dataset_info.json`` with defaults filled in; a missing file means no datasets yet."""
    path = _registry_path(dataset_dir)
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}); fix the file or restore it") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{path} must hold a JSON object mapping dataset names to entries")
    return {name: _normalize(name, entry, path) for name, entry in raw.items()}


def _compact(entry: dict) -> dict:
    """Drop values equal to the defaults so a read/write cycle keeps the file as short as a hand-written one."""
    out = dict(entry)
    formatting = out.get("formatting", "alpaca")
    if formatting == "alpaca":
        out.pop("formatting", None)
    if out.get("ranking") is False:
        out.pop("ranking")
    defaults = {"columns": DEFAULT_COLUMNS.get(formatting, {}), "tags": DEFAULT_TAGS}
    for key, default in defaults.items():
        if isinstance(out.get(key), dict):
            kept = {k: v for k, v in out[key].items() if default.get(k) != v}
            if kept:
                out[key] = kept
            else:
                out.pop(key)
    return out


def write_registry(dataset_dir: str | Path, registry: dict) -> None:
    """Atomically write ``dataset_info.json`` (temp file + ``os.replace``).

    A reader never sees a half-written registry, and a failed write (e.g. a value that isn't
    JSON serialisable) leaves the previous file untouched.
    """
    _write_json(_registry_path(dataset_dir), {name: _compact(entry) for name, entry in registry.items()})


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    fd, tmp = tempfile.mkstemp(prefix=".dataset_info.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    try:
        return load_dataset(kinds.pop(), data_files=[str(p) for p in files], split="train")
    except Exception as exc:  # datasets raises many types; the user needs the file and the cause
        raise DatasetError(f"could not read {path}: {exc}") from exc


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
        raise DatasetError(f"unknown dataset {name!r} in {_registry_path(dataset_dir)}; registered: {names}")
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


# ---- registry edits (the web UI's Datasets tab): read, change one entry, write atomically ----

# Names end up in YAML configs and on command lines (`--set data.dataset=NAME`), so keep them plain.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_new_name(name: str | None, registry: dict) -> str:
    """The stripped name if it is valid and still free; otherwise DatasetError saying what to change."""
    name = (name or "").strip()
    if not name:
        raise DatasetError("give the dataset a name")
    if not NAME_PATTERN.fullmatch(name):
        raise DatasetError(f"name {name!r}: use letters, digits, '_', '-' and '.', starting with a letter or "
                           "digit, at most 64 characters")
    if name in registry:
        raise DatasetError(f"a dataset named {name!r} is already registered; pick another name")
    return name


def unique_file_name(dataset_dir: str | Path, wanted: str, registry: dict) -> str:
    """A file name for the dataset folder that no file and no registry entry uses yet: an entry
    whose file is missing must not silently pick up someone else's upload."""
    path = Path(wanted)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._") or "dataset"
    suffix = path.suffix.lower()
    taken = {str(Path(info.get("file_name") or "")) for info in registry.values()}
    candidate, number = f"{stem}{suffix}", 1
    while (Path(dataset_dir) / candidate).exists() or candidate in taken:
        number += 1
        candidate = f"{stem}-{number}{suffix}"
    return candidate


def _copy_into(source: str | Path, dest: Path) -> None:
    """Copy via a temp file and a rename, so a failed copy never leaves a partial file under the final name."""
    fd, tmp = tempfile.mkstemp(prefix=".upload.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; data files are shared like the registry
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_for_edit(dataset_dir: str | Path) -> tuple[dict, dict]:
    """(the registry as written, the same with defaults filled in). Edits change one entry of the
    former, so every other entry stays exactly as its author wrote it; the latter checks the file."""
    registry = read_registry(dataset_dir)
    path = _registry_path(dataset_dir)
    return (json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}), registry


def register_dataset(dataset_dir: str | Path, name: str, entry: dict, copy_from: str | Path | None = None) -> dict:
    """Add ``entry`` under ``name``; with ``copy_from``, first copy that file into the dataset folder
    under a unique name, which becomes the entry's ``file_name``.

    Both happen or neither: a refused name changes nothing, and a failed registry write removes the
    copied file again. Returns the entry as read back (defaults filled in).
    """
    dataset_dir = Path(dataset_dir)
    raw, registry = _read_for_edit(dataset_dir)
    name = check_new_name(name, registry)
    entry, copied = dict(entry), None
    if copy_from is not None:
        dataset_dir.mkdir(parents=True, exist_ok=True)
        entry["file_name"] = unique_file_name(dataset_dir, Path(copy_from).name, registry)
        copied = dataset_dir / entry["file_name"]
        _copy_into(copy_from, copied)
    try:
        raw[name] = _compact(normalize_entry(entry, name))
        _write_json(_registry_path(dataset_dir), raw)
    except BaseException:
        if copied is not None:
            copied.unlink(missing_ok=True)
        raise
    return normalize_entry(raw[name], name)


def rename_dataset(dataset_dir: str | Path, old: str, new: str) -> str:
    """Rename a registry entry in place (its position in the file is kept); returns the new name."""
    raw, registry = _read_for_edit(dataset_dir)
    if old not in registry:
        raise DatasetError(f"no dataset named {old!r} in {_registry_path(dataset_dir)}")
    if (new or "").strip() == old:
        raise DatasetError(f"the dataset is already called {old!r}; type a different name")
    new = check_new_name(new, registry)
    _write_json(_registry_path(dataset_dir), {(new if key == old else key): value for key, value in raw.items()})
    return new


def remove_dataset(dataset_dir: str | Path, name: str) -> dict:
    """Remove a registry entry and return it (defaults filled in); its data file is left where it is."""
    raw, registry = _read_for_edit(dataset_dir)
    if name not in registry:
        raise DatasetError(f"no dataset named {name!r} in {_registry_path(dataset_dir)}")
    del raw[name]
    _write_json(_registry_path(dataset_dir), raw)
    return registry[name]
