"""Tiny random models for tests and smoke runs (`workbench models make-tiny`): a small Llama with a
byte-level BPE tokenizer trained offline in milliseconds, deterministic in its seed.
"""

from __future__ import annotations

from pathlib import Path

from engine.config.templates import CHATML

_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0,1,2 like SmolLM2


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
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from engine.models.loader import tokenizer_files
    from engine.models.store import resolve_model

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if tokenizer_from is not None:
        tokenizer = tokenizer_files(resolve_model(str(tokenizer_from)))
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
