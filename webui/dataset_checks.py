"""What the Datasets tab checks, without Gradio: a file's rows and a model's tokenizer (both cached:
the tab re-checks on every mapping change), the registry entry a form's values make, and its
validation and preview with the Train tab's model, chat template and cutoff_len.
engine.data.intake and engine.data.check do the checks; webui.dataset_report renders them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.config import ConfigError
from engine.data import check as dc
from engine.data import intake, layouts
from engine.data.reading import load_rows
from engine.models.loader import load_tokenizer
from engine.models.store import resolve_model
from webui import access
from webui.dataset_report import preview_html

PREVIEW_ROWS = 3


# ---- loading (cached) -----------------------------------------------------------------------


@lru_cache(maxsize=4)
def _cached_rows(path: str, _stamp: tuple):
    return load_rows({"file_name": path}, "/")


def rows_of(path: str | Path):
    """The file's rows as training loads them; re-read when its size or mtime changes."""
    st = Path(path).stat()
    return _cached_rows(str(path), (st.st_size, st.st_mtime_ns))


@lru_cache(maxsize=4)
def _cached_tokenizer(path: str, template: str):
    return load_tokenizer(path, template)


def tokenizer_for(model: str | None, template: str | None) -> tuple[Any, str]:
    """(tokenizer or None, why not): token checks are skipped, not fatal, when the model is missing
    or is a folder outside the web UI's allowed folders (webui.access; the model comes from the browser)."""
    try:
        return _cached_tokenizer(str(resolve_model(access.confine_model(model) or "")), template or "model"), ""
    except (FileNotFoundError, OSError, ValueError, ConfigError) as e:
        return None, f"token counts and truncation not checked: {e}"


def _cutoff(value: Any) -> int | None:
    try:
        return int(value) if value and int(value) >= 1 else None
    except (TypeError, ValueError):
        return None


# ---- a draft registration -------------------------------------------------------------------


def draft_entry(source: dict, dataset_dir: str | None, formatting: str, ranking: bool, columns: tuple,
                description: str = "") -> tuple[dict, list[str]]:
    """(registry entry, mapping problems) for the form's values."""
    mapping = dict(zip(layouts.ROLES, columns))
    return intake.draft_entry(source["path"], rows_of(source["path"]), dataset_dir, formatting, ranking, mapping,
                              source["upload"], description)


# ---- validation and preview -----------------------------------------------------------------


def validate_rows(rows, entry: dict, tokenizer, cutoff_len) -> dc.Report:
    """Every row validated; tokens counted on the first dc.TOKEN_CHECK_ROWS."""
    return dc.validate(rows, entry, tokenizer, _cutoff(cutoff_len), dc.TOKEN_CHECK_ROWS)


def validate_draft(source: dict, entry: dict, problems: list[str], model, template,
                   cutoff_len) -> tuple[dc.Report, str, Any]:
    """(report, note on skipped token checks, tokenizer) for a draft entry of the file ``source``."""
    tokenizer, note = tokenizer_for(model, template)
    if problems:
        return dc.Report(problems=problems, cutoff_len=_cutoff(cutoff_len)), note, tokenizer
    return validate_rows(rows_of(source["path"]), entry, tokenizer, cutoff_len), note, tokenizer


def render_preview(rows, entry: dict, tokenizer, note: str, cutoff_len, start) -> str:
    """PREVIEW_ROWS rows from row ``start`` on (1-based), as the model sees them."""
    if tokenizer is None:
        return preview_html([], None, note or "no tokenizer: pick a model on the Train tab")
    first = max(1, _cutoff(start) or 1)
    return preview_html(dc.preview(rows, entry, tokenizer, _cutoff(cutoff_len), first, PREVIEW_ROWS),
                        _cutoff(cutoff_len))
