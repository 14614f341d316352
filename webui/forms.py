"""Hyperparameter forms generated from engine.config's dataclasses.

Every default, bound, choice list and help text is read from the dataclass field's metadata, so
the form cannot drift from what the engine accepts. The pure part (a field -> a FieldSpec with the
component's kwargs; form values <-> a config mapping) runs without Gradio; ``build_section``
turns specs into components inside the current ``gr.Blocks`` context.

Keys are ``section.field`` (``training.learning_rate``); the top-level fields of RunConfig
(``stage``, ``name``, ``init_from``) have no section and are keyed by their bare name.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine.config import SECTIONS, STAGES, TOP_LEVEL, RunConfig, from_dict, to_dict
from engine.config.fields import base_type

KINDS = ("number", "checkbox", "dropdown", "textbox")


@dataclass
class FieldSpec:
    """What the form needs to know about one config field."""

    key: str          # "training.learning_rate", or "stage" for a top-level field
    section: str      # "" for top-level fields
    name: str
    kind: str         # one of KINDS
    default: Any
    optional: bool    # `X | None`: an empty input means None
    advanced: bool
    kwargs: dict      # keyword arguments for the Gradio component


def _float_step(default: Any) -> float:
    """The spinner increment for a float field: the order of magnitude of its default (0.01 when
    the default is 0), so the arrows nudge 2e-4 to 3e-4 rather than to 1.0002."""
    if not default:
        return 0.01
    return 10.0 ** math.floor(math.log10(abs(default)))


def field_spec(section: str, f: dataclasses.Field, hint: Any, **override: Any) -> FieldSpec:
    """The component kind and kwargs for one dataclass field.

    ``override`` adds or replaces component kwargs for fields whose choices are only known at run
    time (the model list, the registered datasets, the parent runs); giving ``choices`` to a text
    field makes it a dropdown.
    """
    meta = f.metadata
    base, optional = base_type(hint)
    default = f.default if f.default is not dataclasses.MISSING else None
    kwargs: dict[str, Any] = {"label": f.name, "info": meta.get("help")}
    if base is bool:
        kind = "checkbox"
        kwargs["value"] = bool(default)
    elif base in (int, float) and not optional:
        # An optional number is a textbox: gr.Number cannot be empty (it shows 0, which fails
        # bounds like max_samples >= 1), and empty is how the form says None.
        kind = "number"
        kwargs.update(value=default, minimum=meta.get("min"), maximum=meta.get("max"))
        if base is int:
            kwargs.update(precision=0, step=1)
        else:
            kwargs["step"] = _float_step(default)
    elif "choices" in meta or "choices" in override:
        kind = "dropdown"
        kwargs.update(choices=list(meta.get("choices", [])), value="" if default is None else default)
    else:
        kind = "textbox"
        kwargs["value"] = "" if default is None else str(default)
        if optional:
            kwargs["placeholder"] = f"(empty: {meta.get('empty', 'none')})"
    kwargs.update(override)
    if "choices" in override and kind == "textbox":
        kind = "dropdown"
        kwargs.pop("placeholder", None)
    if kind == "dropdown" and optional and not kwargs.get("multiselect"):
        kwargs["choices"] = with_none(kwargs["choices"])
    key = f"{section}.{f.name}" if section else f.name
    return FieldSpec(key=key, section=section, name=f.name, kind=kind, default=default,
                     optional=optional, advanced=bool(meta.get("advanced")), kwargs=kwargs)


def section_specs(section: str, cls: type, overrides: dict[str, dict] | None = None,
                  only: tuple[str, ...] | None = None) -> list[FieldSpec]:
    """FieldSpecs for a dataclass's fields, in declaration order (optionally only some fields)."""
    overrides = overrides or {}
    hints = typing.get_type_hints(cls)
    return [field_spec(section, f, hints[f.name], **overrides.get(f.name, {}))
            for f in dataclasses.fields(cls) if only is None or f.name in only]


def top_level_specs(overrides: dict[str, dict] | None = None) -> list[FieldSpec]:
    """Specs for RunConfig's own fields: stage, name, init_from."""
    return section_specs("", RunConfig, overrides, only=TOP_LEVEL)


def all_specs(overrides: dict[str, dict] | None = None) -> list[FieldSpec]:
    """Top-level fields, every section, then every stage's options; overrides keyed by full key."""
    overrides = overrides or {}

    def for_section(section: str) -> dict[str, dict]:
        prefix = f"{section}." if section else ""
        return {k[len(prefix):]: v for k, v in overrides.items()
                if k.startswith(prefix) and "." not in k[len(prefix):]}

    specs = top_level_specs(for_section(""))
    for section, cls in {**SECTIONS, **{name: stage.options for name, stage in STAGES.items()}}.items():
        specs += section_specs(section, cls, for_section(section))
    return specs


def refreshed(choices: list, shown: Any, wanted: Any) -> dict:
    """A picker's update for lists re-read from disk: the new choices, and a value only where it must
    change (``wanted`` differs from the value it ``shown`` when asked). An answer arriving after the user
    picked something (a tab opened while they pick) then cannot put the old value back: a Gradio update
    without a value keeps the one the picker holds."""
    return gr.update(choices=choices) if wanted == shown else gr.update(choices=choices, value=wanted)


def with_none(choices: list, label: str = "(none)") -> list:
    """Dropdown choices for an optional field: an empty entry (None in the config) first."""
    values = [c[1] if isinstance(c, tuple) else c for c in choices]
    return list(choices) if "" in values else [(label, ""), *choices]


# ---- values <-> config mapping (pure) ----

def collect(specs: list[FieldSpec], values: list[Any]) -> dict:
    """The config mapping for form values (in specs order), as engine.config.from_dict takes it.

    Only the chosen stage's options are included: a config holds one stage section. Empty text
    stays "" here; from_dict turns it into None for optional fields and names the key otherwise.
    """
    if len(specs) != len(values):
        raise ValueError(f"{len(values)} values for {len(specs)} fields")
    by_key = dict(zip((s.key for s in specs), values))
    stage = by_key.get("stage") or RunConfig().stage
    data: dict[str, Any] = {}
    for spec, value in zip(specs, values):
        if spec.section in STAGES and spec.section != stage:
            continue
        if spec.section:
            data.setdefault(spec.section, {})[spec.name] = value
        else:
            data[spec.name] = value
    return data


def validate(specs: list[FieldSpec], values: list[Any]) -> RunConfig:
    """Form values -> RunConfig; raises engine.config.ConfigError naming the bad key."""
    return from_dict(collect(specs, values))


def to_values(specs: list[FieldSpec], data: dict) -> list[Any]:
    """Component values (in specs order) showing a config mapping; what it lacks shows its default.

    The mapping is validated first, so a loaded config that the engine would refuse is refused
    here too (ConfigError), before any component changes.
    """
    full = to_dict(from_dict(data))
    values = []
    for spec in specs:
        section = full.get(spec.section, {}) if spec.section else full
        value = section.get(spec.name, spec.default) if isinstance(section, dict) else spec.default
        values.append(display_value(spec, value))
    return values


def values_by_key(specs: list[FieldSpec], data: dict) -> dict[str, Any]:
    """to_values by field key: what a handler answers to fill the form with a config mapping."""
    return dict(zip((s.key for s in specs), to_values(specs, data)))


def display_value(spec: FieldSpec, value: Any) -> Any:
    """A config value as its component shows it: None is an empty text or dropdown."""
    if value is None and spec.kind in ("textbox", "dropdown"):
        return ""
    return str(value) if spec.kind == "textbox" else value


# ---- Gradio components ----

COMPONENTS = {"number": gr.Number, "checkbox": gr.Checkbox, "dropdown": gr.Dropdown, "textbox": gr.Textbox}
FIELD_MIN_WIDTH = 220  # px: a form row wraps before a field gets narrower
# Gradio 6.31's Checkbox drops its min_width, so in a row of fields it was squeezed to its box and a
# column of one-word lines; the app's stylesheet gives it the width the other fields get.
CHECKBOX_CLASS = "wb-checkbox"
CSS = f".{CHECKBOX_CLASS} {{ min-width: min({FIELD_MIN_WIDTH}px, 100%) !important; }}\n"


def make_component(spec: FieldSpec, **extra: Any) -> gr.components.Component:
    """The field's component; its elem_id (``wb-training-learning_rate``) lets a browser test or a
    user stylesheet find it."""
    elem_id = "wb-" + spec.key.replace(".", "-")
    classes = {"elem_classes": [CHECKBOX_CLASS]} if spec.kind == "checkbox" else {}
    return COMPONENTS[spec.kind](**{"elem_id": elem_id, **classes, **spec.kwargs, **extra})


def build_section(specs: list[FieldSpec], advanced_label: str = "Advanced") -> list[gr.components.Component]:
    """Render specs in the current Blocks context: basic fields in a row, advanced ones folded away.

    Returns the components in specs order, so values line up with ``collect``/``to_values``.
    """
    made: dict[str, gr.components.Component] = {}
    basic = [s for s in specs if not s.advanced]
    advanced = [s for s in specs if s.advanced]
    with gr.Row():
        for spec in basic:
            made[spec.key] = make_component(spec, min_width=FIELD_MIN_WIDTH)
    if advanced:
        with gr.Accordion(advanced_label, open=False, elem_id=f"wb-{advanced[0].section}-advanced"):
            with gr.Row():
                for spec in advanced:
                    made[spec.key] = make_component(spec, min_width=FIELD_MIN_WIDTH)
    return [made[s.key] for s in specs]


def setting(settings: type, name: str, **kwargs: Any) -> gr.components.Component:
    """The widget of one field of a settings dataclass outside the run form (Sampling, EvalConfig), with
    the field's default, bounds and help: a number with both bounds is a slider, anything else what
    the run form would use. ``kwargs`` add to or replace the component's (``choices`` make a dropdown)."""
    f = next(f for f in dataclasses.fields(settings) if f.name == name)
    spec = field_spec("", f, typing.get_type_hints(settings)[name], **kwargs)
    if spec.kind == "number" and spec.kwargs.get("minimum") is not None and spec.kwargs.get("maximum") is not None:
        return gr.Slider(**{k: v for k, v in spec.kwargs.items() if k != "precision"})
    return COMPONENTS[spec.kind](**spec.kwargs)
