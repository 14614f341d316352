"""File primitives every folder the workbench writes relies on: whole files replaced atomically,
JSON lines appended and read back while another process writes them, and a log's tail.

A reader (the web UI, the CLI) must never see half a file, and never fail on the half line a
writer is in the middle of: these are the only places that write or read such files.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

TAIL_BYTES = 64 * 1024  # enough for a few hundred log lines; never read a whole multi-MB log every second


def _mode(path: Path) -> int:
    """The permissions a rewritten file keeps: its own, else what the umask gives a new file
    (mkstemp's 0600 would make a shared file such as dataset_info.json private)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: Path, text: str) -> None:
    """Write via a temp file + rename so a reader never sees half a file, and a failed write (a
    full disk) leaves the previous file, or none, never an empty or partial one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file holding a mapping, as plain data; {} when it is missing, unreadable or not a mapping
    (listings must show a folder whose file another version wrote, or someone edited by hand)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it, so live readers see it at once."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a JSON-lines file ([] when there is none); a half-written last line,
    or any line that is not a JSON object, is skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def tail(path: Path, lines: int) -> str:
    """The last lines of a text file ('' when there is none), reading only its end."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
