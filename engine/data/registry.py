"""The dataset registry: ``dataset_info.json`` in the dataset folder, read, written and edited.

Datasets are registered in a LLaMA-Factory style ``dataset_info.json`` because that schema
(alpaca / sharegpt, ``ranking``, ``columns``, ``tags``) is what most public alignment data
already ships with; an entry may add ``probes`` (engine.data.probes), which LLaMA-Factory ignores. Reading fills in LLaMA-Factory's defaults, so the rest of the code never has
to guess; writing drops them again, so the file stays as short as a hand-written one. Edits (the
web UI's Datasets tab) change one entry and keep every other entry exactly as its author wrote it.
Loading and converting the rows an entry names is engine.data.rows' job.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.config import DataConfig
from engine.config.formats import DEFAULT_FORMAT, FORMATS
from engine.data.probes import ProbeError, parse_probes
from engine.files import atomic_write
from engine.paths import REPO_ROOT

REGISTRY_FILE = "dataset_info.json"


def default_tags(formatting: str) -> dict:
    return FORMATS[formatting].tags


class DatasetError(ValueError):
    """A dataset problem the user can fix; the message says what to change and where."""


def dataset_folder(dataset_dir: str | Path | None) -> Path:
    """A config's data.dataset_dir as a folder: a relative one is relative to the repository root,
    where the engine runs (so the UI, evaluation and training read the same registry)."""
    path = Path(dataset_dir or DataConfig().dataset_dir)
    return path if path.is_absolute() else REPO_ROOT / path

def registry_path(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / REGISTRY_FILE


def _normalize(name: str, entry: Any, path: Path) -> dict:
    """Fill in LLaMA-Factory defaults so the rest of the code never has to guess."""
    if not isinstance(entry, dict):
        raise DatasetError(f"{path}: entry {name!r} must be a JSON object with at least \"file_name\"")
    formatting = entry.get("formatting", DEFAULT_FORMAT)
    if formatting not in FORMATS:
        raise DatasetError(f"{path}: dataset {name!r} has formatting {formatting!r}; use "
                           + " or ".join(f'"{f}"' for f in FORMATS))
    for key in ("columns", "tags"):
        if not isinstance(entry.get(key) or {}, dict):
            raise DatasetError(f"{path}: dataset {name!r}: \"{key}\" must be a JSON object")
    try:
        parse_probes(entry.get("probes"), f"dataset {name!r}: probes")
    except ProbeError as e:
        raise DatasetError(f"{path}: {e}") from None
    info = dict(entry)
    info["formatting"] = formatting
    info["ranking"] = bool(entry.get("ranking", False))
    info["columns"] = {**FORMATS[formatting].columns, **(entry.get("columns") or {})}
    info["tags"] = {**default_tags(formatting), **(entry.get("tags") or {})}
    return info


def normalize_entry(entry: Any, name: str = "new dataset") -> dict:
    """A registry entry with LLaMA-Factory's defaults filled in, as read_registry returns it."""
    return _normalize(name, entry, Path(REGISTRY_FILE))


def read_registry(dataset_dir: str | Path) -> dict[str, dict]:
    """Read ``dataset_info.json`` with defaults filled in; a missing file means no datasets yet."""
    path = registry_path(dataset_dir)
    if not path.is_file():
        return {}
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise DatasetError(f"{path} must hold a JSON object mapping dataset names to entries")
    return {name: _normalize(name, entry, path) for name, entry in raw.items()}


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 "
                           "or restore it") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}); fix the file or restore it") from None


def compact_entry(entry: dict) -> dict:
    """Drop values equal to the defaults so a read/write cycle keeps the file as short as a hand-written one."""
    out = dict(entry)
    formatting = out.get("formatting", DEFAULT_FORMAT)
    if formatting == DEFAULT_FORMAT:
        out.pop("formatting", None)
    if out.get("ranking") is False:
        out.pop("ranking")
    known = FORMATS.get(formatting)
    defaults = {"columns": known.columns if known else {}, "tags": known.tags if known else {}}
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
    _write_json(registry_path(dataset_dir), {name: compact_entry(entry) for name, entry in registry.items()})


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


# ---- edits (the web UI's Datasets tab): read, change one entry, write atomically ----------------

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
    path = registry_path(dataset_dir)
    return (_load_json(path) if path.is_file() else {}), registry


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
        raw[name] = compact_entry(normalize_entry(entry, name))
        _write_json(registry_path(dataset_dir), raw)
    except BaseException:
        if copied is not None:
            copied.unlink(missing_ok=True)
        raise
    return normalize_entry(raw[name], name)


def rename_dataset(dataset_dir: str | Path, old: str, new: str) -> str:
    """Rename a registry entry in place (its position in the file is kept); returns the new name."""
    raw, registry = _read_for_edit(dataset_dir)
    if old not in registry:
        raise DatasetError(f"no dataset named {old!r} in {registry_path(dataset_dir)}")
    if (new or "").strip() == old:
        raise DatasetError(f"the dataset is already called {old!r}; type a different name")
    new = check_new_name(new, registry)
    _write_json(registry_path(dataset_dir), {(new if key == old else key): value for key, value in raw.items()})
    return new


def remove_dataset(dataset_dir: str | Path, name: str) -> dict:
    """Remove a registry entry and return it (defaults filled in); its data file is left where it is."""
    raw, registry = _read_for_edit(dataset_dir)
    if name not in registry:
        raise DatasetError(f"no dataset named {name!r} in {registry_path(dataset_dir)}")
    del raw[name]
    _write_json(registry_path(dataset_dir), raw)
    return registry[name]


def set_probe(dataset_dir: str | Path, name: str, probe: str, conditions: dict | None) -> dict:
    """Declare (or, with conditions None, drop) a task probe on a registered dataset; returns the
    entry's probes as written. The declaration is checked first, so a bad one changes nothing."""
    raw, registry = _read_for_edit(dataset_dir)
    if name not in registry:
        raise DatasetError(f"no dataset named {name!r} in {registry_path(dataset_dir)}")
    probes = dict(raw[name].get("probes") or {})
    if conditions is None:
        probes.pop(probe, None)
    else:
        probes[probe] = conditions
    try:
        parse_probes(probes, f"dataset {name!r}: probes")
    except ProbeError as e:
        raise DatasetError(str(e)) from None
    raw[name] = {**raw[name], "probes": probes} if probes else {k: v for k, v in raw[name].items() if k != "probes"}
    _write_json(registry_path(dataset_dir), raw)
    return probes
