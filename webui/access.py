"""The folders the web UI may touch: every path a browser sends is checked here first.

Any client that reaches the server can call every event handler over HTTP with any value (hiding an
endpoint from the API page stops no one), so a dataset folder, a data file, a model folder or a run
folder typed in the browser could otherwise name any file the server's user can read or any folder
it can create. The UI works only inside its allowed roots: the default dataset folder
(``data.dataset_dir``'s default), the saves folder (models, runs, exports, saved configs), and the
folders given at start-up with ``--allow-dir`` or ``WORKBENCH_ALLOWED_DIRS``. Files a browser
uploads (Gradio's upload folder) are accepted too. The command line is not confined: a terminal
user acts with their own rights.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.registry import dataset_folder
from engine.paths import saves_root

ENV_DIRS = "WORKBENCH_ALLOWED_DIRS"
_started_with: list[Path] = []  # --allow-dir, set once by webui.app.main


class OutsideAllowedFolders(PermissionError):
    """A browser-given path outside the allowed roots; the message names it, the roots and the fix."""


def allow(folders: list[str | Path]) -> None:
    """The folders given with --allow-dir (they replace any given before)."""
    _started_with[:] = [Path(f).expanduser().resolve() for f in folders]


def env_folders() -> list[Path]:
    """WORKBENCH_ALLOWED_DIRS, os.pathsep-separated; read on every call, like WORKBENCH_SAVES."""
    return [Path(f).expanduser() for f in os.environ.get(ENV_DIRS, "").split(os.pathsep) if f.strip()]


def allowed_roots() -> list[Path]:
    """Every allowed root, resolved (symlinks followed), without repeats, in a stable order."""
    roots = [dataset_folder(None), saves_root(), *_started_with, *env_folders()]
    return list(dict.fromkeys(Path(root).resolve() for root in roots))


def upload_folder() -> Path:
    """Where Gradio keeps uploaded files (GRADIO_TEMP_DIR, else the system temp folder's gradio/)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def refusal(given: str | Path, resolved: Path) -> str:
    shown = f"{given}" if str(given) == str(resolved) else f"{given} (that is {resolved})"
    roots = ", ".join(str(root) for root in allowed_roots())
    return (f"{shown} is outside the folders the web UI may use ({roots}); to use it, restart the web UI with "
            f"--allow-dir FOLDER for a folder that holds it (or add that folder to {ENV_DIRS}), or use the "
            "`workbench` command line")


def confine(path: str | Path) -> Path:
    """The path resolved (``..`` and symlinks), if it lies inside an allowed root; else
    OutsideAllowedFolders. A relative path is taken as the server sees it (its working folder)."""
    resolved = Path(path).expanduser().resolve()
    if not _inside(resolved, allowed_roots()):
        raise OutsideAllowedFolders(refusal(path, resolved))
    return resolved


def confine_upload(path: str | Path) -> Path:
    """An uploaded file: inside Gradio's upload folder (Gradio itself accepts only files uploaded
    there for a file input), else inside an allowed root."""
    resolved = Path(path).expanduser().resolve()
    if _inside(resolved, [upload_folder()]):
        return resolved
    return confine(path)


def confine_dataset_dir(value: str | Path | None) -> str:
    """A form's data.dataset_dir (empty: the default; relative: to the repository root, as
    engine.data.registry reads it) as the resolved folder, if allowed."""
    return str(confine(dataset_folder(value)))


def _is_path_like(text: str) -> bool:
    """A model value that can only be meant as a path: absolute, from a home folder, or climbing with
    ``..`` (``org/name`` is a hub name). Checked even when nothing is there, so the answer says nothing
    about what exists."""
    path = Path(text)
    return path.is_absolute() or text.startswith("~") or ".." in path.parts


def names_a_path(text: str) -> bool:
    """A run value (init_from, reward_run) given as a folder rather than a run name, a prefix of one
    or latest:<stage>: run folder names hold no separator."""
    return _is_path_like(text) or "/" in text or os.sep in text or text == "."


def confine_model(value: str | None) -> str | None:
    """A model picker's value: a local model name, an HF-style name with nothing on disk, or a model
    folder's path, which must be inside an allowed root. Returns the value as given.

    A name is looked up in the models folder, whose entries (symlinks included) are the server
    owner's; a path is checked where engine.models.store.resolve_model would load it."""
    text = (value or "").strip()
    if not text:
        return value
    if _is_path_like(text) or Path(text).exists():  # resolve_model tries the path first
        confine(text)
    return value
