"""Answers to the Train form applied in the browser, so that an answer arriving late cannot undo what
the user did meanwhile.

Two handlers propose values for the Train form from what it showed when they were asked:
webui.run_form.stage_changed (after a change of the stage, the dataset folder or the registry: the
pickers' choices, a dataset that no longer fits replaced, the parent run defaulted, the stage's
sections shown) and webui.tabs.train.page_loaded (a followed run's own settings). On a loaded machine
their answer can reach the page after the user has picked another dataset, typed a name or picked
another stage; applied as Gradio applies a server's answer, it would put the old values back. So
these answers go to a hidden JSON box, and a browser-side step (APPLY) applies them at once against
the form as it is at that moment (no round trip, so nothing can change in between):

- an answer made for another stage or dataset folder than the form shows (its ``asked`` values) is
  dropped whole; the answer to the form's own stage follows it (a change while one is being answered
  is queued);
- a value is set only where the field still shows the value the answer replaces (``replaces``);
  otherwise the field keeps what the user gave it, and only its choices change (a Gradio update
  without a value keeps the value).

An answer is {"asked": {field key: value}, "updates": {name: {"choices"?, "value", "replaces"?,
"visible"?}}}, a name being a field key or section_key(section); the box holds one answer or a list,
applied in order (a field a first answer set counts as shown by the next).
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from webui.tabs import Event

# (answers, *the fields' values in FIELDS' order) -> one update per target field, then per section box.
# The targets are only the fields an answer may set (a stage answer: the pickers), so an answer does
# not touch, and re-render, the rest of the form.
APPLY = """(answers, ...shown) => {
    const fields = %s, targets = %s, sections = %s;
    const same = (a, b) => JSON.stringify(a ?? "") === JSON.stringify(b ?? "");
    const now = Object.fromEntries(fields.map((key, i) => [key, shown[i]]));
    const out = {};
    for (const answer of [].concat(answers ?? [])) {
        if (!Object.entries(answer.asked ?? {}).every(([key, value]) => same(value, now[key]))) continue;
        for (const [key, given] of Object.entries(answer.updates ?? {})) {
            const {replaces, ...update} = given;
            if ("replaces" in given && !same(replaces, now[key])) delete update.value;  // the user changed it
            if ("value" in update) now[key] = update.value;
            out[key] = {...out[key], ...update};
        }
    }
    return [...targets, ...sections].map((key) => ({__type__: "update", ...out[key]}));
}"""


def section_key(section: str) -> str:
    """The name of a section's box in an answer (field keys never start with it)."""
    return f"section:{section}"


def _blank(value: Any) -> Any:
    return "" if value is None else value  # an empty text or dropdown: None from one side, "" from the other


def replacing(shown: Any, wanted: Any) -> dict[str, Any]:
    """The part of an update that sets a field to ``wanted`` where it still shows ``shown``; nothing
    when the two are the same (the field keeps its value: none is sent)."""
    return {} if _blank(wanted) == _blank(shown) else {"value": wanted, "replaces": shown}


def _same(a: Any, b: Any) -> bool:
    """Two values of one field alike, as the browser and the server may write them (8 and 8.0)."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return _blank(a) == _blank(b)


def fill(values: dict[str, Any], shown: dict[str, Any], initial: dict[str, Any] | None = None) -> dict[str, Any]:
    """An answer that sets fields to ``values`` (by key), each only while it still shows what it showed
    (``shown``) when the answer was asked for. With ``initial`` (the values the page starts with), a
    field already changed from it when the answer was asked is left alone too: on a slow machine the
    user can type before a page load's question is even sent, and what they typed is theirs."""
    initial = initial or {}
    return {"asked": {}, "updates": {key: replacing(shown.get(key), value) for key, value in values.items()
                                     if replacing(shown.get(key), value)
                                     and (key not in initial or _same(shown.get(key), initial[key]))}}


def answer_box() -> gr.JSON:
    """The hidden box an answer travels in (its value reaches the browser-side step as an input)."""
    return gr.JSON(visible=False, elem_id="wb-form-answer")


def apply_step(fields: dict[str, Any], box: gr.JSON, sections: dict[str, Any],
               targets: tuple[str, ...] | None = None) -> Event:
    """The browser-only step that applies the answer(s) in ``box`` to the form's ``fields`` (by key;
    only those in ``targets`` are set, default all) and its section boxes (``sections``, by
    section_key); it follows each listener that answers into ``box``."""
    targets = list(fields) if targets is None else [key for key in fields if key in targets]
    js = APPLY % (json.dumps(list(fields)), json.dumps(targets), json.dumps(list(sections)))
    return Event(None, [box, *fields.values()], [*(fields[key] for key in targets), *sections.values()],
                 {"js": js, "show_progress": "hidden"})
