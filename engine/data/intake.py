"""A user's data file on its way into the registry, the same for the web UI's Datasets tab and
``workbench data``: read it, detect its layout, draft the registry entry, validate every row, and
register it (copied into the dataset folder, or by path).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.data import layouts
from engine.data.check import Report, validate
from engine.data.reading import load_rows
from engine.data.registry import DatasetError, dataset_folder, read_registry, register_dataset


def read_file(path: str | Path):
    """The file's rows exactly as training loads them."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    return load_rows({"file_name": str(path.resolve())}, "/")


def sample(rows) -> list[dict]:
    """The first rows, those layout detection looks at."""
    return rows.select(range(min(len(rows), layouts.SAMPLE_ROWS))).to_list()


def default_name(stem: str, dataset_dir: str | Path | None) -> str:
    """The file's stem, made valid and unique in the registry."""
    base = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in stem).strip("._-")[:60] or "dataset"
    try:
        taken = read_registry(dataset_folder(dataset_dir))
    except DatasetError:
        taken = {}
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}_{number}"
    return name


def registry_file_name(path: Path, dataset_dir: str | Path | None) -> str:
    """What a by-path entry stores: relative inside the dataset folder, else absolute."""
    folder, path = dataset_folder(dataset_dir).resolve(), Path(path).resolve()
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def draft_entry(path: str | Path, rows, dataset_dir, formatting: str, ranking: bool, mapping: dict,
                upload: bool, description: str = "") -> tuple[dict, list[str]]:
    """(registry entry, mapping problems) for a mapping of the file's columns to roles."""
    mapping = {role: column or None for role, column in mapping.items()}
    file_name = Path(path).name if upload else registry_file_name(Path(path), dataset_dir)
    known = {role: column for role, column in mapping.items() if column in rows.column_names}
    tags = layouts.mapped_tags(sample(rows), formatting, known)
    problems = layouts.check_mapping(formatting, ranking, mapping, rows.column_names)
    entry = layouts.build_entry(file_name, formatting, ranking, mapping, rows.column_names, tags, description)
    return entry, problems


def not_detected(detection: layouts.Detection, columns: list[str]) -> str:
    """Why no layout fitted: every layout tried and what the file lacked for it."""
    return (f"no known layout fits the columns {', '.join(columns)}; tried:\n"
            + "\n".join(f"  - {line}" for line in detection.tried))


@dataclass
class Intake:
    """A file checked as the Datasets tab and `workbench data check` check it."""

    path: Path
    rows: object               # datasets.Dataset
    detection: layouts.Detection
    entry: dict
    problems: list[str]
    report: Report


def check_file(path: str | Path, dataset_dir=None, upload: bool = True, tokenizer=None,
               cutoff_len: int | None = None, token_rows: int | None = None) -> Intake:
    """Read, detect, draft and validate a file with no choices made by hand."""
    path = Path(path)
    rows = read_file(path)
    found = layouts.detect(sample(rows), rows.column_names)
    entry, problems = draft_entry(path, rows, dataset_dir, found.formatting, found.ranking, found.columns, upload)
    if not found.layout:
        problems = [not_detected(found, rows.column_names)]
    report = Report(problems=problems, cutoff_len=cutoff_len) if problems else \
        validate(rows, entry, tokenizer, cutoff_len, token_rows)
    return Intake(path, rows, found, entry, problems, report)


def register_file(intake: Intake, dataset_dir, name: str | None = None, copy: bool = True) -> tuple[str, dict]:
    """(name, entry as written) after a clean check; copies the file into the dataset folder unless
    ``copy`` is False (then the entry reads it where it is)."""
    if not intake.report.ok:
        raise DatasetError("the file has errors (see the check); nothing was registered")
    folder = dataset_folder(dataset_dir)
    name = name or default_name(intake.path.stem, dataset_dir)
    entry = dict(intake.entry)
    if not copy:
        entry["file_name"] = registry_file_name(intake.path, dataset_dir)
    written = register_dataset(folder, name, entry, copy_from=intake.path if copy else None)
    return name, written
