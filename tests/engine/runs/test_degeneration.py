"""engine.runs.degeneration: alarms over the answers to the sample prompts, each against the same
prompt's answer at step 0, with hand-made answers (a looping numbered list, a good one, ...)."""

from __future__ import annotations

from engine.runs import degeneration as dg
from engine.runs import health
from tests.helpers import GOOD, LOOP, PARAGRAPH


def samples(step: int, *answers: str, ended: bool = True, kl: float | None = None, limit: int = 64) -> list[dict]:
    prompts = ["How do I bake a cake?", "How do I plant a tree?", "How do I fix a flat tyre?"]
    return [{"step": step, "prompt": p, "answer": a, "tokens": len(a.split()), "ended": ended, "limit": limit,
             **({"kl": kl} if kl is not None else {})} for p, a in zip(prompts, answers)]


def test_a_looping_answer_is_an_alarm_quoting_it_and_a_good_run_is_not():
    start = samples(0, PARAGRAPH, PARAGRAPH, PARAGRAPH)
    [w] = dg.alarms(start + samples(12, GOOD, LOOP, GOOD))
    assert w["code"] == dg.LOOP and w["step"] == 12
    assert "'How do I plant a tree?'" in w["message"] and "'1. 1. 1. 1." in w["message"] and "…" in w["message"]
    assert dg.alarms(start + samples(12, GOOD, GOOD, GOOD)) == []  # the preferred style is no loop
    assert dg.repeated_ngram_share(LOOP) > 0.9 and dg.repeated_ngram_share(GOOD) == 0.0


def test_loops_without_spaces_are_loops_too():
    # SmolLM2 at DPO lr 1e-3 on the how-to pairs, step 6 (the looping prompt of the README's run)
    assert dg.loops("1. 1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1")
    assert dg.loops("SELECT * FROM orders WHERE id = 1" + "0" * 80) and dg.loops("ha" * 40)
    assert not dg.loops(PARAGRAPH) and not dg.loops(GOOD) and not dg.loops("Short. Short. Short.")


def test_each_alarm_is_against_step_0_of_the_same_prompt():
    looping_base = samples(0, LOOP, PARAGRAPH, PARAGRAPH)  # a base model may loop on a prompt already
    assert dg.alarms(looping_base + samples(6, LOOP, PARAGRAPH, PARAGRAPH)) == []
    assert dg.alarms(samples(0, GOOD, GOOD, GOOD)) == []  # step 0 alone is the baseline, no alarm


def test_empty_runaway_and_collapsing_answers():
    start = samples(0, GOOD, PARAGRAPH, "Loosen the nuts, jack the car up, swap the wheel.")
    [empty] = dg.alarms(start + samples(4, GOOD, "", "Loosen the nuts, jack the car up, swap the wheel."))
    assert empty["code"] == dg.EMPTY and "1 of 3 sample answers are empty now" in empty["message"]
    assert "to 'How do I plant a tree?': ''" in empty["message"]
    runaway = dg.alarms(start + samples(4, GOOD, PARAGRAPH + " And more", "Loosen the nuts.", ended=False))
    assert [w["code"] for w in runaway] == [dg.RUNAWAY] and "3 of 3 sample answers now run to the token limit" in \
        runaway[0]["message"]
    same = "the the the cake cake cake"
    collapsed = dg.alarms(start + samples(4, same, same, same))
    assert dg.COLLAPSE in [w["code"] for w in collapsed]


def test_drift_from_the_reference_past_the_bound():
    start = samples(0, GOOD, GOOD, GOOD, kl=0.0)
    assert dg.alarms(start + samples(5, GOOD, GOOD, GOOD, kl=0.4), kl_bound=1.5) == []
    [w] = dg.alarms(start + samples(5, GOOD, GOOD, GOOD, kl=2.5), kl_bound=1.5)
    assert w["code"] == dg.DRIFT and "2.50 nats per token (alarm above 1.5)" in w["message"]
    assert dg.alarms(start + samples(5, GOOD, GOOD, GOOD, kl=2.5), kl_bound=None) == []  # SFT: no reference


def test_health_check_holds_the_sample_alarms_beside_the_metric_rules():
    history = [{"step": s, "loss": 0.5} for s in range(1, 4)]
    found = health.check(history, pairs_per_log=8, samples=samples(0, PARAGRAPH, PARAGRAPH, PARAGRAPH)
                         + samples(3, LOOP, GOOD, GOOD))
    assert [w["code"] for w in found] == [dg.LOOP]
    assert dg.degenerate(LOOP) and dg.degenerate("  ") and not dg.degenerate(GOOD)


def test_the_loop_alarm_counts_the_loops_and_quotes_the_worst():
    start = samples(0, PARAGRAPH, PARAGRAPH, PARAGRAPH)
    mild = " ".join(["mix the flour and the sugar"] * 5) + " then bake"
    assert dg.loops(mild) and dg.repeated_ngram_share(mild) < dg.repeated_ngram_share(LOOP)
    [w] = dg.alarms(start + samples(9, mild, GOOD, LOOP))
    assert "2 of 3 sample answers loop now" in w["message"]
    assert "the worst, to 'How do I fix a flat tyre?': '1. 1. 1." in w["message"]  # not the mild one


def test_the_advice_reads_the_runs_own_settings():
    start, looping = samples(0, PARAGRAPH, PARAGRAPH, PARAGRAPH), samples(9, LOOP, GOOD, GOOD)
    clean = samples(6, GOOD, GOOD, GOOD)
    set_ftx = dg.RunFacts(learning_rate=3e-4, epochs=6, pref_ftx=1.0, stop_on_alarm=False, train_rows=20)
    [w] = dg.alarms(start + clean + looping, facts=set_ftx)
    assert "pref_ftx" not in w["message"]  # already set: never "add" it
    assert "Lower training.learning_rate (now 0.0003, e.g. 0.0001)" in w["message"]
    assert "train fewer epochs (training.num_train_epochs is 6)" in w["message"]
    assert "stop by step 6 (the last check without an alarm)" in w["message"]
    assert "samples.stop_on_alarm stops a run at its first alarm" in w["message"]
    no_ftx = dg.RunFacts(learning_rate=1e-4, epochs=1, pref_ftx=0.0, stop_on_alarm=True)
    [w] = dg.alarms(start + looping, facts=no_ftx)
    assert "add dpo.pref_ftx" in w["message"] and "epochs" not in w["message"] and "stop_on_alarm" not in w["message"]
    assert "stop by step" not in w["message"]  # no check between the start and the alarm
    [w] = dg.alarms(start + looping, facts=dg.RunFacts(learning_rate=1e-4, pref_ftx=None))  # SFT: no pref_ftx
    assert "pref_ftx" not in w["message"]


def test_a_check_cut_shorter_than_the_start_is_no_runaway_for_being_cut():
    start = samples(0, GOOD, PARAGRAPH, GOOD)  # ended within 64 tokens, after more than 24
    short = samples(5, GOOD[:60], PARAGRAPH[:60], GOOD[:60], ended=False, limit=24)
    assert all(r["tokens"] > 0 for r in short) and dg.alarms(start + short) == []
    briefly = [{**r, "tokens": 3} for r in samples(0, "Mix. Bake.", "Dig. Plant.", "Jack. Swap.")]
    runaway = dg.alarms(briefly + samples(5, GOOD[:60], PARAGRAPH[:60], GOOD[60:120], ended=False, limit=24))
    assert [w["code"] for w in runaway] == [dg.RUNAWAY]  # ended within 3 tokens, now cut at 24
