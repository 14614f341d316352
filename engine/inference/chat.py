"""Side-by-side chat: one prompt answered by several models at once, streamed as it decodes.

A column is the bare base model, a LoRA run (its adapter over that base) or a full fine-tuned run.
The base and every LoRA run share ONE copy of the base weights and decode as a single batch, one
row per column, so k columns cost about one model's memory and one decoding loop: the adapters are
loaded as named peft adapters, then packed side by side into every LoRA layer, each row taking its
own (engine.inference.multi_lora; peft's own mixed-adapter batch, ``adapter_names=["__base__",
"run0", ...]``, decoded 4 columns at 0.63x of plain ``generate`` on a CPU, its per-adapter
bookkeeping costing more than the LoRA math). Adapters that cannot pack (LoRA bias, trained
embeddings) keep peft's mixed batch. A full fine-tuned run is a model of its own; it is decoded
after that batch. All torch work runs on one long-lived thread (``TorchThread`` says why); the
caller's thread only streams.

Sampling is per row: every row draws from its own torch.Generator seeded with the same seed, so a
column's answer depends on its model, the prompt and the settings only, not on which other
columns share the batch (temperature 0 is greedy).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from transformers.generation.streamers import BaseStreamer

from engine import seams
from engine.config import ConfigError, Sampling
from engine.inference.generate import generate, user_turn
from engine.inference.multi_lora import BASE_NAME, adapters_per_row, pack
from engine.models import loader
from engine.models.loader import run_base_model, run_weights, stop_token_ids
from engine.models.store import resolve_model
from engine.runs.folder import Weights, resolve_run

BASE_KEY = BASE_NAME  # also the adapter name of the bare base's row in a mixed batch
MAX_COLUMNS = 4


class ChatError(ValueError):
    """A comparison that cannot run as asked; the message says why and what to pick instead."""


@dataclass(frozen=True)
class Column:
    key: str  # BASE_KEY or the run's folder name
    label: str
    weights: Weights | None = None  # the run's final weights; None for the bare base


@dataclass
class Answer:
    label: str
    text: str = ""
    tokens: int = 0
    seconds: float = 0.0
    state: str = "waiting"  # waiting | loading | generating | done (turn ended) | length | stopped

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def plan_columns(base_model: str, keys: list[str]) -> list[Column]:
    """Columns for a base model and picked keys (BASE_KEY or run names/paths), checked to fit:
    an adapter only fits the base model it was trained on."""
    if not keys:
        raise ChatError("pick at least one model to answer")
    if len(keys) > MAX_COLUMNS:
        raise ChatError(f"at most {MAX_COLUMNS} columns side by side ({len(keys)} picked)")
    base = resolve_model(base_model).resolve()
    columns = []
    for key in keys:
        if key == BASE_KEY:
            columns.append(Column(BASE_KEY, f"{base.name} (base)"))
            continue
        run = resolve_run(key)
        weights = run_weights(run)
        if not weights.full:
            trained_on = run_base_model(run)
            if trained_on != base:
                raise ChatError(f"run {run.name} was trained on {trained_on.name} ({trained_on}), not on the "
                                f"chosen base model {base.name} ({base}): its adapter only fits its own base. "
                                f"Choose {trained_on.name} as the base model or pick another run.")
        columns.append(Column(run.name, f"{run.name} ({run.stage or '?'})", weights))
    return columns


def shares_base(column: Column) -> bool:
    """The bare base and LoRA runs decode together on one copy of the base model."""
    return column.weights is None or not column.weights.full


@dataclass
class LoadedModels:
    """One comparison's models: the shared base (with the adapters packed in, or a PeftModel where
    they cannot pack), the adapter name of each LoRA column, full models by column key, a tokenizer
    per column."""
    key: tuple
    shared: Any = None
    adapter_names: dict[str, str] = field(default_factory=dict)
    full: dict[str, Any] = field(default_factory=dict)
    tokenizers: dict[str, Any] = field(default_factory=dict)


_cache: LoadedModels | None = None  # at most one set: a second prompt to the same columns reuses it
# One comparison decodes at a time: each row's adapter is set on the shared model's layers for the
# length of a generate call (packed rows or peft's hooks), and the CPU has no cores to spare anyway.
_lock = threading.Lock()


class TorchThread:
    """One long-lived thread that runs all of chat's torch work (loading and decoding), in order.

    Every thread that runs a parallel torch op keeps its own OpenMP team, and once a process holds
    more OpenMP threads than cores, GNU OpenMP stops spinning between parallel regions and sleeps
    instead: each of a decode step's hundreds of small products then waits on a wake-up. Measured
    on 2 cores, SmolLM2 with 3 packed LoRAs decoded 10.8 tokens/s on the thread that loaded it and
    7.5-8.3 on a fresh thread per answer (a LoRA's bmm of 4 rows: 3.6 us against 21). So chat keeps
    to one thread: the caller's threads (Gradio's workers, the bench's main thread) only stream."""

    def __init__(self, name: str):
        self.name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def submit(self, fn: Callable, *args) -> Future:
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
        future: Future = Future()
        self._jobs.put((future, fn, args))
        return future

    def _serve(self) -> None:
        while True:
            future, fn, args = self._jobs.get()
            if future.set_running_or_notify_cancel():
                torch.set_num_threads(decode_threads())  # this thread's OpenMP team, for this job
                try:
                    future.set_result(fn(*args))
                except BaseException as e:  # handed to the caller through the future
                    future.set_exception(e)


_torch = TorchThread("chat-torch")


def decode_threads() -> int:
    """Threads for chat's torch work: one while a training engine runs on this machine's CPU, else
    all cores. Two processes whose OpenMP teams together want more threads than there are cores wait
    on each other at every small product: measured on 2 cores, SmolLM2 chat decoded 3.4 tokens/s on 2
    threads beside a DPO run (16 idle) and 17 on 1 thread beside it; alone, 1 thread decodes one
    column as fast as 2 and three packed columns 8% slower."""
    from engine.runs.queue import active_run

    cores = os.cpu_count() or 1
    if torch.cuda.is_available() or cores == 1:
        return max(1, torch.get_num_threads())
    return 1 if active_run() is not None else int(os.environ.get("OMP_NUM_THREADS", cores))


def _cache_key(base: Path, columns: list[Column]) -> tuple:
    """Base and weights folders with their newest file time (retrained weights are reloaded);
    in any order, since adapters are looked up by column key."""
    def stamp(weights: Weights | None) -> float:
        return max((f.stat().st_mtime for f in weights.path.iterdir()), default=0.0) if weights else 0.0
    return (str(base),) + tuple(sorted((c.key, str(c.weights), stamp(c.weights)) for c in columns))


def _base_tokenizer(base: Path, run_tokenizers: dict):
    """The base model's own chat template; a base without one is prompted in its first run's format."""
    try:
        return loader.load_tokenizer(base)
    except ConfigError:
        if not run_tokenizers:
            raise ChatError(f"{base.name} has no chat template of its own; compare it with a run trained "
                            "with a template (model.template) to borrow that one") from None
        tokenizer = loader.tokenizer_files(base)
        tokenizer.chat_template = next(iter(run_tokenizers.values())).chat_template
        return tokenizer


def _load(base: Path, columns: list[Column]) -> LoadedModels:
    dtype, device = loader.compute_dtype(), loader.inference_device()
    loaded = LoadedModels(_cache_key(base, columns))
    loaded.tokenizers = {c.key: loader.run_tokenizer(c.weights) for c in columns if c.weights is not None}
    if any(c.weights is None for c in columns):
        loaded.tokenizers[BASE_KEY] = _base_tokenizer(base, loaded.tokenizers)
    for column in columns:
        if not shares_base(column):
            loaded.full[column.key] = loader.causal_lm(column.weights.path, dtype).to(device).eval()
    if any(shares_base(c) for c in columns):
        # peft names adapters as modules: run folder names may hold characters a module name must not
        adapters = [c for c in columns if c.weights is not None and not c.weights.full]
        loaded.adapter_names = {c.key: f"run{i}" for i, c in enumerate(adapters)}
        names = [loaded.adapter_names[c.key] for c in adapters]
        lm = loader.with_adapters(loader.causal_lm(base, dtype), {n: c.weights.path for n, c in zip(names, adapters)})
        packed = pack(lm, names) if adapters and seams.usable("packed_adapters", seams.speedups_default()) else None
        loaded.shared = (lm if packed is None else packed).to(device).eval()
    return loaded


def load_columns(base: Path, columns: list[Column]) -> LoadedModels:
    """The models for these columns, from the cache when nothing changed on disk."""
    global _cache
    key = _cache_key(base, columns)
    if _cache is None or _cache.key != key:
        _cache = None  # free the old set before loading the new one
        _cache = _load(base, columns)
    return _cache


def _groups(columns: list[Column], loaded: LoadedModels) -> list[tuple[Any, list[int], list[str] | None]]:
    """(model, column indices, peft adapter names or None): the shared batch, then each full model."""
    shared = [i for i, c in enumerate(columns) if shares_base(c)]
    groups = []
    if shared:
        names = [loaded.adapter_names.get(columns[i].key, BASE_KEY) for i in shared]
        groups.append((loaded.shared, shared, names if loaded.adapter_names else None))
    groups += [(loaded.full[c.key], [i], None) for i, c in enumerate(columns) if not shares_base(c)]
    return groups


def stream_chat(base_model: str, keys: list[str], prompt: str, sampling: Sampling = Sampling(),
                stop: threading.Event | None = None) -> Iterator[list[Answer]]:
    """Stream the answers of every column to one prompt: yields a snapshot of all columns whenever
    some of them grew. Setting ``stop`` ends the decoding at the next token."""
    if not prompt.strip():
        raise ChatError("type a prompt first")
    columns = plan_columns(base_model, keys)
    stop = stop or threading.Event()
    answers = [Answer(c.label, state="loading") for c in columns]
    yield [replace(a) for a in answers]
    if not _lock.acquire(timeout=120):
        raise ChatError("another comparison is still answering; try again when it is done")
    try:
        loaded = _torch.submit(load_columns, resolve_model(base_model).resolve(), columns).result()
        for answer in answers:
            answer.state = "waiting"
        yield [replace(a) for a in answers]
        for lm, rows, adapter_names in _groups(columns, loaded):
            group = [answers[i] for i in rows]
            if stop.is_set():  # stopped during an earlier group: the later ones do not start
                for answer in group:
                    answer.state = "stopped"
                continue
            tokenizers = [loaded.tokenizers[BASE_KEY if columns[i].weights is None else columns[i].key] for i in rows]
            for _ in stream_group(lm, tokenizers, group, prompt, sampling, stop, adapter_names):
                yield [replace(a) for a in answers]
        yield [replace(a) for a in answers]
    finally:
        _lock.release()


class BatchStreamer(BaseStreamer):
    """Collects each row's new token ids as generate() produces them (TextIteratorStreamer only
    takes batch size 1); a row ends at its first stop token, later ones are padding."""

    def __init__(self, rows: int, stop_ids: list[int]):
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.ended_at: list[float | None] = [None] * rows  # when the row emitted its stop token
        self.stop_ids = set(stop_ids)
        self.finished = threading.Event()
        self._prompt_seen = False
        self._steps = 0
        self._new_step = threading.Condition()

    def put(self, value) -> None:
        if not self._prompt_seen:  # generate() hands over the prompt ids first
            self._prompt_seen = True
            return
        now = time.monotonic()
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.ended_at[row] is None:
                self.tokens[row].append(token)
                if token in self.stop_ids:
                    self.ended_at[row] = now
        with self._new_step:
            self._steps += 1
            self._new_step.notify_all()

    def end(self) -> None:
        with self._new_step:
            self.finished.set()
            self._new_step.notify_all()

    def updates(self, min_interval: float = 0.25) -> Iterator[None]:
        """Yields whenever new tokens arrived (at most every min_interval seconds), and once at the end."""
        seen, last = 0, 0.0
        while True:
            with self._new_step:
                self._new_step.wait_for(lambda: self._steps > seen or self.finished.is_set(), timeout=1.0)
                seen, ended = self._steps, self.finished.is_set()
            if ended:
                yield
                return
            if time.monotonic() - last >= min_interval:
                last = time.monotonic()
                yield


def _decode_into(answers: list[Answer], streamer: BatchStreamer, tokenizers: list, start: float) -> None:
    now = time.monotonic()
    for row, answer in enumerate(answers):
        tokens = list(streamer.tokens[row])
        answer.text = tokenizers[row].decode(tokens, skip_special_tokens=True).strip()
        answer.tokens = len(tokens)
        answer.seconds = (streamer.ended_at[row] or now) - start
        answer.state = "done" if streamer.ended_at[row] is not None else "generating"


def stream_group(lm, tokenizers: list, answers: list[Answer], prompt: str, sampling: Sampling,
                 stop: threading.Event, adapter_names: list[str] | None = None) -> Iterator[None]:
    """Decode one batch (one row per answer) on chat's torch thread and fill ``answers`` as tokens
    arrive; yields after each update."""
    streamer = BatchStreamer(len(answers), stop_token_ids(lm, *tokenizers))
    conversation = user_turn(prompt, sampling.system or None)

    def run() -> None:
        try:
            with torch.inference_mode(), adapters_per_row(lm, adapter_names) as peft_names:
                generate(lm, tokenizers, [conversation] * len(answers), sampling, adapter_names=peft_names,
                         streamer=streamer, stop=stop)
        finally:
            streamer.end()

    start = time.monotonic()
    decoding = _torch.submit(run)
    streamed = False
    try:
        for _ in streamer.updates():
            _decode_into(answers, streamer, tokenizers, start)
            yield
        streamed = True
    finally:
        if not streamed:  # the consumer went away (page closed, Clear) or failed: free the model
            stop.set()
        wait([decoding])
    decoding.result()  # re-raises the decoding's error in the caller's thread
    for answer in answers:
        if answer.state != "done":
            answer.state = "stopped" if stop.is_set() else "length"
    yield
