"""Reading a dataset's data files: json, jsonl, csv or parquet, one file or a folder of them,
exactly as training loads them, with every way a file can be broken reported by file and line
(pyarrow's own errors give byte positions in blocks, which no one can act on): not JSON, not
UTF-8 text, empty, or a CSV row with more fields than its header.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from engine.data.registry import REGISTRY_FILE, DatasetError

if TYPE_CHECKING:  # datasets is heavy; import it only where rows are actually loaded
    import datasets

LOADERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


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
    for file in files:
        if _blank(file):
            raise DatasetError(f"{file.name} is empty: it holds no rows")
    try:
        rows = load_dataset(kind, data_files=[str(p) for p in files], split="train")
    except Exception as exc:  # datasets raises many types; the user needs the file and the cause
        where = _encoding_error(files) if kind != "parquet" else None
        where = where or {"json": _json_error, "csv": _csv_error}.get(kind, lambda _files: None)(files)
        raise DatasetError(where or f"could not read {path}: {exc}") from exc
    if kind != "parquet":
        _check_text(rows, files, kind)
    return rows


def _blank(file: Path) -> bool:
    """Nothing but whitespace (only small files are read to tell)."""
    size = file.stat().st_size
    return size == 0 or (size < 4096 and not file.read_bytes().strip())


def _check_text(rows, files: list[Path], kind: str) -> None:
    """pyarrow reads invalid UTF-8 into string columns without a word (it fails later, in whoever
    reads the row), and pandas reads a CSV row with more fields than its header as an index."""
    try:
        rows.data.validate(full=True)
    except Exception:  # pyarrow.lib.ArrowInvalid: a string column holds invalid UTF-8
        raise DatasetError(_encoding_error(files) or "the file is not UTF-8 text; save it as UTF-8") from None
    if kind == "csv" and any(c.startswith("__index_level_") for c in rows.column_names):
        raise DatasetError(_csv_error(files) or "a CSV row has more fields than the header; quote fields "
                                                "that contain commas")


def _encoding_error(files: list[Path]) -> str | None:
    """'name.jsonl, line 3: not UTF-8 text (...)' for the first undecodable line."""
    for file in files:
        for number, line in enumerate(file.read_bytes().split(b"\n"), 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                return (f"{file.name}, line {number}: not UTF-8 text (byte 0x{line[e.start]:02x} at column "
                        f"{e.start + 1}); save the file with the UTF-8 encoding")
    return None


def _csv_error(files: list[Path]) -> str | None:
    """'name.csv, line 3: 5 fields where the header has 3' for the first such row."""
    for file in files:
        reader = csv.reader(io.StringIO(file.read_text(encoding="utf-8")))
        header = next(reader, [])
        for fields in reader:
            if len(fields) > len(header):
                return (f"{file.name}, line {reader.line_num}: {len(fields)} fields where the header has "
                        f"{len(header)}; quote fields that contain commas")
    return None


def _json_error(files: list[Path]) -> str | None:
    """'name.jsonl, line 3: not valid JSON (...)' for the first bad line or document, because
    pyarrow's parse errors give a byte position in a block, which no one can act on."""
    for file in files:
        content = file.read_text(encoding="utf-8", errors="replace")
        try:
            json.loads(content)
            continue  # one JSON document (a list of rows): valid
        except json.JSONDecodeError as whole:
            first_error = whole
        for number, line in enumerate(content.splitlines(), 1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as e:
                    if file.suffix.lower() == ".jsonl" or number > 1:
                        return (f"{file.name}, line {number}: not valid JSON ({e.msg}, column {e.colno}); "
                                "fix or remove the line")
                    break
        return f"{file.name}, line {first_error.lineno}: not valid JSON ({first_error.msg}, column {first_error.colno})"
    return None


