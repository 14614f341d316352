"""Export a run as a standalone Hugging Face model: `saves/exports/<name>/`.

A LoRA run's adapter is merged into its base model (``merge_and_unload``); a full fine-tune's
model/ is re-saved as it is. A QLoRA run (``finetuning_type`` qlora-4bit / qlora-8bit) trained its
adapter on a quantised copy of the base, but its export merges the adapter into the full-precision
base, loaded from disk without quantisation: merging into the quantised weights would bake their
rounding error into every layer (and bitsandbytes' rounded weights are not what anyone loads later).
The export refuses a base that is itself quantised, and its metadata, README and the job's message
say into which base the adapter went.

Either way the folder holds safetensors weights, the run's tokenizer (with the chat template it
trained with), a generation config that stops at that template's turn end, and
``workbench_export.json`` + README.md naming the source. It loads with plain
``AutoModelForCausalLM.from_pretrained(path)``: no peft, no workbench.

The folder is written beside its destination under a dot-name and renamed into place, so a failed
or interrupted export never leaves a half model that looks usable. Heavy imports (torch,
transformers, peft) happen inside export_run: listing exports stays light for the UI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from engine.models.loader import QUANTISED_BASES, merged_model, run_tokenizer, run_weights, stop_token_ids
from engine.paths import exports_root
from engine.runs.folder import RunFolder, Weights, resolve_run

METADATA = "workbench_export.json"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class ExportError(ValueError):
    """An export that cannot be made as asked; the message says why."""



def export_path(name: str) -> Path:
    """The folder for an export name typed in the UI: a plain folder name under exports_root()."""
    if not _NAME.fullmatch(name or ""):
        raise ExportError(f"export name {name!r}: use letters, digits, '_', '-' and '.', not starting with '.' or '-'")
    return exports_root() / name


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def fmt_size(size: int) -> str:
    return f"{size / 2**30:.2f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


def _generation_config(lm, tokenizer):
    """The model's generation config, stopping at the tokenizer's eos as well: a run trained with
    a chat template whose turns end in their own token must stop there in any generate()."""
    config = lm.generation_config
    ids = stop_token_ids(lm, tokenizer)
    config.eos_token_id = ids[0] if len(ids) == 1 else ids
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    return config


QUANTISED_LAYERS = ("Linear4bit", "Linear8bitLt", "Params4bit", "Int8Params")


def check_full_precision(lm) -> str:
    """The merged model's weight dtype (e.g. "float32"); an ExportError if any of it is quantised
    (a bitsandbytes layer, integer weights or a quantization_config), which only happens when the
    base folder itself holds a quantised model."""
    import torch

    quantised = sorted({type(m).__name__ for m in lm.modules() if type(m).__name__ in QUANTISED_LAYERS})
    dtypes = {p.dtype for p in lm.parameters()}
    if quantised or getattr(lm.config, "quantization_config", None) or not all(d.is_floating_point for d in dtypes):
        raise ExportError(f"the merged model is quantised ({', '.join(quantised) or 'quantization_config'}): its base "
                          "folder holds a quantised model; export needs a full-precision base to merge into")
    dtype = max(dtypes, key=lambda d: torch.finfo(d).bits)  # the weights' dtype (norms may differ in mixed saves)
    return str(dtype).removeprefix("torch.")


def merge_note(meta: dict) -> str:
    """One line on what was merged into what: the job's (CLI's) message and the README say it."""
    if meta.get("kind") == "full fine-tune":
        return f"full fine-tune re-saved ({meta.get('dtype')})"
    quantised = meta.get("trained_on_quantised_base")
    trained = f" (trained on a {quantised} quantised copy of the base)" if quantised else ""
    return (f"LoRA adapter{trained} merged into the full-precision base ({meta.get('dtype')}), "
            "loaded without quantisation")


def _write_metadata(folder: Path, dest: Path, run: RunFolder, weights: Weights, base: Path,
                    dtype: str = "") -> dict:
    """workbench_export.json and a README into ``folder``, naming ``dest``, where it will live."""
    cfg = run.raw_config()
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    quantised = None if weights.full else QUANTISED_BASES.get(model.get("finetuning_type") or "")
    meta = {"source_run": run.name, "source_path": str(run.path.resolve()), "stage": cfg.get("stage"),
            "kind": "full fine-tune" if weights.full else
            "QLoRA adapter merged into the full-precision base" if quantised else "merged LoRA adapter",
            "base_model": str(base), "finetuning_type": model.get("finetuning_type"),
            "template": model.get("template", "model"), "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
            "dtype": dtype}
    if not weights.full:
        meta.update(merged_into="full-precision base (loaded without quantisation)",
                    trained_on_quantised_base=quantised)
    meta["note"] = merge_note(meta)
    (folder / METADATA).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    (folder / "README.md").write_text(
        f"# {dest.name}\n\nExported by workbench from run `{run.name}` ({meta['stage']}, "
        f"{meta['kind']}; base model `{base}`, chat template `{meta['template']}`).\n\n{meta['note']}: "
        f"the weights are plain {dtype} tensors, with no quantisation.\n\n"
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f"model = AutoModelForCausalLM.from_pretrained(\"{dest}\")\n"
        f"tokenizer = AutoTokenizer.from_pretrained(\"{dest}\")\n```\n", encoding="utf-8")
    return meta


def check_destination(run: RunFolder, out_dir: str | Path | None = None) -> Path:
    """Where an export of the run goes (default: exports_root()/<run folder name>); it must not exist."""
    dest = Path(out_dir) if out_dir is not None else exports_root() / run.name
    if dest.exists():
        raise ExportError(f"{dest} already exists: pick another name or delete it first")
    return dest


def export_run(run: str | Path | RunFolder, out_dir: str | Path | None = None) -> Path:
    """Write the run's complete model to ``out_dir`` (default: exports_root()/<run folder name>),
    which must not exist yet. Returns the folder."""
    run = resolve_run(run)
    weights = run_weights(run)
    dest = check_destination(run, out_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        # in the base's own dtype (a bf16 base stays bf16 on disk), never quantised: merged_model loads
        # the base without the run's quantization_config, so a QLoRA adapter lands in full-precision weights
        lm, base = merged_model(run, dtype="auto")
        dtype = check_full_precision(lm)
        tokenizer = run_tokenizer(weights)  # saved by the engine with the run's template
        lm.generation_config = _generation_config(lm, tokenizer)
        lm.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        _write_metadata(staging, dest.resolve(), run, weights, base, dtype)
        staging.chmod(0o755)  # mkdtemp makes it private; exports are meant to be shared
        for file in staging.iterdir():
            file.chmod(0o644)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def export_note(folder: Path) -> str:
    """The merge note of a finished export (its workbench_export.json), or "" for a folder without one."""
    try:
        return json.loads((Path(folder) / METADATA).read_text(encoding="utf-8")).get("note", "")
    except (OSError, json.JSONDecodeError):
        return ""


def list_exports() -> list[dict]:
    """Finished exports (dot-folders are exports in progress), newest first."""
    root = exports_root()
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not (folder / "config.json").is_file():
            continue
        try:
            meta = json.loads((folder / METADATA).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            meta = {}  # a model folder put there by hand: list it all the same
        found.append({"name": folder.name, "path": str(folder), "size": folder_size(folder),
                      "mtime": folder.stat().st_mtime, **meta})
    return sorted(found, key=lambda e: e["mtime"], reverse=True)
