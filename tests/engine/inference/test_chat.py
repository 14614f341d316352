"""Side-by-side chat on the tiny model: hand-made LoRA runs (random, non-zero adapters) and a
full fine-tune, compared in one mixed-adapter batch against each model decoded alone."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.inference import chat
from engine.inference.chat import BASE_KEY, ChatError, Sampling, plan_columns, stream_chat
from engine.inference.generate import answer, user_turn
from engine.models.loader import inference_model
from engine.models.tiny import make_tiny_model
from tests.helpers import make_weight_run

PROMPT = "Table users(id, name, age). Names of users over 30."


@pytest.fixture(scope="module")
def weight_runs(saves, tiny_model, tmp_path_factory) -> dict[str, Path]:
    """sft and dpo (continuing it) adapters, a full fine-tune, and an adapter on another base.
    In their own runs root, so other tests' `latest:sft` never sees them (they are passed by path)."""
    root = tmp_path_factory.mktemp("chat-runs")
    other = make_tiny_model(saves / "models" / "tiny-other", seed=7)
    sft = make_weight_run(root, tiny_model, "sft", seed=1)
    return {"sft": sft, "dpo": make_weight_run(root, tiny_model, "dpo", seed=2, init_from=sft),
            "full": make_weight_run(root, tiny_model, "sft", seed=3, full=True),
            "other": make_weight_run(root, other, "sft", seed=4, model_name="tiny-other")}


def final(base: str, keys: list[str], sampling: Sampling = Sampling(max_new_tokens=12), **kw):
    *_, last = stream_chat(base, keys, PROMPT, sampling, **kw)
    return last


def alone(run: Path | None, sampling: Sampling, tiny_model: Path) -> str:
    lm, tokenizer = inference_model(str(tiny_model), run)  # adapters merged: another code path
    return answer(lm, tokenizer, [user_turn(PROMPT)], sampling)[0][0]


def test_mixed_adapter_batch_matches_each_model_alone(weight_runs, tiny_model):
    sampling = Sampling(max_new_tokens=12)
    keys = [BASE_KEY, str(weight_runs["sft"]), str(weight_runs["dpo"]), str(weight_runs["full"])]
    answers = final(str(tiny_model), keys, sampling)
    expected = [alone(None, sampling, tiny_model)] + [alone(weight_runs[k], sampling, tiny_model)
                                                     for k in ("sft", "dpo", "full")]
    assert [a.text for a in answers] == expected
    assert len(set(expected)) == 4  # the adapters really differ, so the batch mixed them per row
    assert [a.label for a in answers] == ["tiny (base)", f"{weight_runs['sft'].name} (sft)",
                                          f"{weight_runs['dpo'].name} (dpo)", f"{weight_runs['full'].name} (sft)"]
    for reply in answers:
        assert reply.state in ("done", "length") and 0 < reply.tokens <= 12 and reply.tokens_per_second > 0


def test_sampling_is_seeded_per_column_whatever_shares_the_batch(weight_runs, tiny_model):
    sampling = Sampling(max_new_tokens=10, temperature=1.0, top_p=0.9, seed=3)
    mixed = final(str(tiny_model), [BASE_KEY, str(weight_runs["sft"])], sampling)
    base_alone = final(str(tiny_model), [BASE_KEY], sampling)
    sft_alone = final(str(tiny_model), [str(weight_runs["sft"])], sampling)
    assert [a.text for a in mixed] == [base_alone[0].text, sft_alone[0].text]
    other_seed = final(str(tiny_model), [BASE_KEY], Sampling(max_new_tokens=10, temperature=1.0, seed=4))
    assert other_seed[0].text != base_alone[0].text


def test_stream_grows_then_ends(weight_runs, tiny_model, monkeypatch):
    monkeypatch.setattr(chat.BatchStreamer.updates, "__defaults__", (0.0,))  # every token, to watch growth
    snapshots = list(stream_chat(str(tiny_model), [BASE_KEY, str(weight_runs["sft"])], PROMPT,
                                 Sampling(max_new_tokens=16)))
    assert [a.state for a in snapshots[0]] == ["loading", "loading"]
    lengths = [len(s[1].text) for s in snapshots]
    assert lengths == sorted(lengths) and len(set(lengths)) > 3  # the text grows step by step
    assert all(a.state in ("done", "length") for a in snapshots[-1])


def test_stop_ends_every_column_and_skips_later_models(weight_runs, tiny_model):
    stop = threading.Event()
    stream = stream_chat(str(tiny_model), [str(weight_runs["sft"]), str(weight_runs["full"])], PROMPT,
                         Sampling(max_new_tokens=400), stop=stop)
    for snapshot in stream:
        if snapshot[0].tokens >= 3:
            stop.set()
    assert [a.state for a in snapshot] == ["stopped", "stopped"]
    # stopped well before the 400-token limit (how many tokens were already in flight depends on the load)
    assert snapshot[0].tokens < 400 and snapshot[1].tokens == 0


def test_closing_the_stream_stops_decoding_and_frees_the_lock(weight_runs, tiny_model):
    stream = stream_chat(str(tiny_model), [BASE_KEY], PROMPT, Sampling(max_new_tokens=400))
    for snapshot in stream:
        if snapshot[0].tokens >= 2:
            break
    stream.close()  # what Gradio does to a cancelled event
    assert chat._lock.acquire(timeout=5)
    chat._lock.release()


def test_models_are_cached_between_prompts(weight_runs, tiny_model):
    keys = [BASE_KEY, str(weight_runs["sft"])]
    final(str(tiny_model), keys)
    first = chat._cache
    final(str(tiny_model), keys)
    assert chat._cache is first
    final(str(tiny_model), [BASE_KEY])
    assert chat._cache is not first  # one set at a time


def test_an_adapter_on_another_base_is_refused_naming_both(weight_runs, tiny_model):
    with pytest.raises(ChatError, match=r"trained on tiny-other .*not on the chosen base model tiny "):
        plan_columns(str(tiny_model), [str(weight_runs["other"])])
    with pytest.raises(ChatError, match="pick at least one"):
        plan_columns(str(tiny_model), [])
    with pytest.raises(ChatError, match="prompt"):
        next(stream_chat(str(tiny_model), [BASE_KEY], "  "))


def test_full_runs_fit_any_base(weight_runs, tiny_model, saves):
    columns = plan_columns(str(saves / "models" / "tiny-other"), [str(weight_runs["full"])])
    assert columns[0].weights.full


def test_loading_and_decoding_stay_on_one_torch_thread(weight_runs, tiny_model, monkeypatch):
    """All of chat's torch work runs on one long-lived thread, not on the callers' threads: a process
    whose threads each keep an OpenMP team decoded ~25% slower on 2 cores."""
    threads = []

    def on_thread(fn):
        def recorded(*args, **kwargs):
            threads.append(threading.get_ident())
            return fn(*args, **kwargs)
        return recorded

    monkeypatch.setattr(chat, "load_columns", on_thread(chat.load_columns))
    monkeypatch.setattr(chat, "generate", on_thread(chat.generate))
    final(str(tiny_model), [BASE_KEY, str(weight_runs["sft"]), str(weight_runs["full"])])
    final(str(tiny_model), [str(weight_runs["dpo"])])
    assert len(threads) == 5  # load, the shared batch, the full model; load, the LoRA
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()


def test_a_decoding_error_reaches_the_caller_and_the_thread_serves_on(weight_runs, tiny_model, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    with monkeypatch.context() as patch:
        patch.setattr(chat, "generate", broken)
        with pytest.raises(RuntimeError, match="out of memory"):
            final(str(tiny_model), [BASE_KEY])
    assert chat._lock.acquire(timeout=5)
    chat._lock.release()
    assert final(str(tiny_model), [BASE_KEY])[0].state in ("done", "length")
