"""The web UI's tabs, one module each, in workflow order: datasets, train, runs, chat, evaluate, export.

Each module's ``build(page)`` lays its components out in the current ``gr.Tab``, wires their events
to the module's own handlers, and returns a ``Tab``: its components and what a page load and
opening the tab re-read from disk. webui.app assembles them under the top bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Event:
    """A handler and its components, registered by webui.app (on page load, on opening the tab)."""

    fn: Callable | None  # None: a browser-only step (its ``js`` in options)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # more keyword arguments of the listener
    then: Event | None = None  # a step registered to follow this one once it succeeded


@dataclass
class Page:
    """What the tabs share: the run form's field specs, the top bar's components (model, chat
    template, fine-tuning type, dtype), once the Train tab is built, the run form's components, and
    the registry's version (a gr.State the Datasets tab bumps after each registry edit; the Train tab
    refilters its dataset pickers when it changes)."""

    specs: list
    top: dict[str, Any]
    form: dict[str, Any] = field(default_factory=dict)
    registry_version: Any = None


@dataclass
class Tab:
    components: dict[str, Any]
    on_load: list[Event] = field(default_factory=list)
    on_select: Event | None = None
