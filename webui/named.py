"""Handlers answer by name: a handler wired to several components returns ``{name: update}``, and its
event is wired with ``by_name(handler, {name: component})``, which hands Gradio ``{component: update}``.

Gradio applies a dict answer by component, whatever the order of the event's ``outputs``, and leaves
an output the answer does not name as it is (``gr.skip()``): adding a widget can never shift another
widget's update, and a test reads an answer by the same names the wiring uses.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr


def to_components(answer: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """A handler's ``{name: update}`` as ``{component: update}``. A name the event does not output is an
    error, not a silent skip (a misspelt name would otherwise never update anything)."""
    if not isinstance(answer, Mapping):
        raise TypeError(f"a handler wired by name must answer a dict of names, not {type(answer).__name__}")
    unknown = sorted(set(answer) - set(outputs))
    if unknown:
        raise KeyError(f"the answer names outputs the event does not have: {unknown} (it has {sorted(outputs)})")
    # Gradio reads an empty dict as a value, not as "no change": nothing to update is a skip
    return {outputs[name]: update for name, update in answer.items()} or gr.skip()


def by_name(fn: Callable, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """``fn=`` and ``outputs=`` for an event listener whose handler answers by name:
    ``button.click(inputs=[...], **by_name(handler, {"status": status_md, "timer": timer}))``.
    Generators (streamed answers) are wrapped as generators; the wrapper keeps the handler's signature
    (Gradio reads it for gr.Request parameters) and its name (the default API name)."""
    outputs = dict(outputs)
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def answer(*args, **kwargs):
            for named in fn(*args, **kwargs):
                yield to_components(named, outputs)
    else:
        @functools.wraps(fn)
        def answer(*args, **kwargs):
            return to_components(fn(*args, **kwargs), outputs)
    if isinstance(fn, functools.partial):  # a partial has no name of its own to copy
        answer.__name__ = answer.__qualname__ = fn.func.__name__
    return {"fn": answer, "outputs": list(outputs.values())}
