"""webui.named: handlers answer {name: update}; Gradio gets {component: update}, by component, so an
output's place in the event's list never matters. webui.form_answers' fill: a value travels with the
value it replaces, and only where the two differ."""

from __future__ import annotations

import functools
import inspect

import gradio as gr
import pytest

from webui import form_answers
from webui.named import by_name


def outputs() -> dict:
    with gr.Blocks():
        return {"status": gr.Markdown(), "log": gr.Textbox(), "timer": gr.Timer(active=False)}


def answer(name: str | None, request: gr.Request | None = None) -> dict:
    return {"log": f"log of {name}", "status": "ok"}


def test_an_answer_by_name_reaches_gradio_by_component_in_any_order():
    out = outputs()
    wired = by_name(answer, out)
    assert wired["outputs"] == [out["status"], out["log"], out["timer"]]
    assert wired["fn"]("r1") == {out["log"]: "log of r1", out["status"]: "ok"}  # the timer: left as it is
    # Gradio reads the handler's signature (a gr.Request is filled in) and its name (the API name)
    assert inspect.signature(wired["fn"]) == inspect.signature(answer) and wired["fn"].__name__ == "answer"


def test_nothing_to_update_is_a_skip_and_an_unknown_name_an_error():
    out = outputs()
    assert by_name(dict, out)["fn"]() == gr.skip()
    with pytest.raises(KeyError, match="'stauts'"):
        by_name(lambda: {"stauts": "typo"}, out)["fn"]()
    with pytest.raises(TypeError, match="dict of names"):
        by_name(lambda: ["ok", "log"], out)["fn"]()


def test_streamed_answers_and_partials_keep_their_kind_and_name():
    out = outputs()

    def stream(n: int):
        for i in range(n):
            yield {"status": f"step {i}"}

    wired = by_name(stream, out)["fn"]
    assert inspect.isgeneratorfunction(wired)  # Gradio streams a generator function's answers
    assert list(wired(2)) == [{out["status"]: "step 0"}, {out["status"]: "step 1"}]
    assert by_name(functools.partial(answer, "r2"), out)["fn"].__name__ == "answer"


def test_a_fill_sends_only_values_that_differ_with_the_values_they_replace():
    filled = form_answers.fill({"stage": "dpo", "name": "run", "init_from": "", "dpo.beta": 0.2},
                               {"stage": "sft", "name": "run", "init_from": None, "dpo.beta": 0.1})
    assert filled == {"asked": {}, "updates": {"stage": {"value": "dpo", "replaces": "sft"},
                                               "dpo.beta": {"value": 0.2, "replaces": 0.1}}}
    assert form_answers.replacing("", None) == {}  # an empty field is empty, whichever side says so


def test_a_fill_leaves_a_field_the_user_changed_before_it_was_asked_for():
    """On a slow machine the page load's question can leave after the user typed a name: the name,
    changed from what the page started with, is the user's; the untouched fields are filled."""
    filled = form_answers.fill({"name": "penn-dpo", "stage": "dpo", "training.learning_rate": 1e-4},
                               {"name": "typed", "stage": "sft", "training.learning_rate": 2e-4},
                               initial={"name": "", "stage": "sft", "training.learning_rate": 0.0002})
    assert filled["updates"] == {"stage": {"value": "dpo", "replaces": "sft"},
                                 "training.learning_rate": {"value": 1e-4, "replaces": 2e-4}}
