"""The local model store: named model folders under saves/models, listed and resolved.

Everything the engine trains is a plain Hugging Face model folder (config.json + safetensors +
tokenizer files), so every trainer can load it and no hub is needed. Listing reads file headers
only: the web UI imports this module to fill its model pickers without torch. Fetching the embedded
model is engine.models.fetch; tiny test models are engine.models.tiny.
"""

from __future__ import annotations

import json
from math import prod
from pathlib import Path

from engine.paths import models_dir

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def is_complete(folder: Path) -> bool:
    """A folder counts as a model only with config, weights and tokenizer, so a crash mid-write is visible."""
    needed = ("config.json", "model.safetensors", *TOKENIZER_FILES)
    return all((folder / name).is_file() for name in needed)


def _safetensors_params(folder: Path) -> int | None:
    """Count parameters from safetensors headers (8-byte length + JSON), without loading tensors."""
    total = None
    try:
        for file in sorted(folder.glob("*.safetensors")):
            with open(file, "rb") as fh:
                header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
            header.pop("__metadata__", None)
            # prod([]) == 1, like torch.Size([]).numel(): a scalar tensor holds one value
            total = (total or 0) + sum(prod(info["shape"]) for info in header.values())
    except (OSError, ValueError, KeyError):
        return None
    return total


def list_models(root: Path | None = None) -> list[dict]:
    """Model folders under ``root`` (default models_dir()), for the UI's model picker."""
    root = Path(root) if root is not None else models_dir()
    if not root.is_dir():
        return []
    models = []
    for folder in sorted(root.iterdir(), key=lambda p: p.name):
        # dot-folders are in-progress fetches (see fetch_default_model)
        if folder.name.startswith(".") or not (folder / "config.json").is_file():
            continue
        size_mb = round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1)
        params = _safetensors_params(folder)
        models.append({"name": folder.name, "path": str(folder), "params": params, "size_mb": size_mb})
    return models


def model_names() -> list[str]:
    """The names of the models under models_dir(), what model pickers offer."""
    return [m["name"] for m in list_models()]


def resolve_model(name_or_path: str) -> Path:
    """Turn a user's model argument into a folder: an existing path wins, then a local model name."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path.resolve()
    named = models_dir() / str(name_or_path)
    if named.is_dir():
        return named
    names = model_names()
    raise FileNotFoundError(
        f"Model {name_or_path!r} is neither an existing path nor a model in {models_dir()}. "
        f"Local models: {', '.join(names) if names else '(none)'}. "
        "Run `workbench models fetch` to get the default model, or give the path of a "
        "Hugging Face-format model folder."
    )
