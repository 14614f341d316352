"""webui.forms: components generated from engine.config's dataclasses."""

from __future__ import annotations

import dataclasses
import typing

import gradio as gr
import pytest

from engine.config import SECTIONS, STAGES, TOP_LEVEL, ConfigError, RunConfig, from_dict, to_dict
from tests.helpers import tiny_config
from webui import forms


def every_field():
    """(key, field, type hint) of every setting a config can hold."""
    hints = typing.get_type_hints(RunConfig)
    for f in dataclasses.fields(RunConfig):
        if f.name in TOP_LEVEL:
            yield f.name, f, hints[f.name]
    for section, cls in {**SECTIONS, **{n: st.options for n, st in STAGES.items()}}.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            yield f"{section}.{f.name}", f, hints[f.name]


def test_every_field_gets_a_spec_with_its_metadata():
    specs = {s.key: s for s in forms.all_specs()}
    expected = list(every_field())
    assert list(specs) == [key for key, _f, _h in expected]
    for key, f, hint in expected:
        spec, meta, kw = specs[key], f.metadata, specs[key].kwargs
        assert kw["info"] == meta["help"], key
        assert spec.advanced == bool(meta.get("advanced")), key
        base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
        default = None if f.default is dataclasses.MISSING else f.default
        if base is bool:
            assert (spec.kind, kw["value"]) == ("checkbox", default), key
        elif base in (int, float) and spec.optional:  # empty means None, which gr.Number cannot show
            assert spec.kind == "textbox" and kw["value"] == ("" if default is None else str(default)), key
        elif base in (int, float):
            assert spec.kind == "number", key
            assert (kw["value"], kw["minimum"], kw["maximum"]) == (default, meta.get("min"), meta.get("max")), key
            assert kw.get("precision") == (0 if base is int else None), key
        elif "choices" in meta:
            assert spec.kind == "dropdown" and kw["choices"] == meta["choices"] and kw["value"] == default, key
        else:
            assert spec.kind == "textbox" and kw["value"] == ("" if default is None else default), key


def test_optional_fields_are_marked_and_empty():
    specs = {s.key: s for s in forms.all_specs()}
    assert specs["data.eval_dataset"].optional and specs["data.eval_dataset"].kwargs["value"] == ""
    assert specs["init_from"].optional and specs["init_from"].kind == "textbox"
    assert specs["data.max_samples"].kind == "textbox" and specs["data.max_samples"].kwargs["value"] == ""
    assert specs["data.max_samples"].kwargs["placeholder"] == "(empty: all)"  # what empty means, per field
    assert specs["init_from"].kwargs["placeholder"] == "(empty: none)"
    # typed text reaches from_dict, which coerces it and names the key when it is wrong
    values = [forms.display_value(s, s.default) for s in specs.values()]
    keys = list(specs)
    values[keys.index("data.max_samples")] = "64"
    assert forms.validate(list(specs.values()), values).data.max_samples == 64
    values[keys.index("data.max_samples")] = "0"
    with pytest.raises(ConfigError, match="^data.max_samples: 0 is below the minimum 1"):
        forms.validate(list(specs.values()), values)
    assert not specs["data.dataset"].optional


def test_overrides_turn_text_fields_into_dropdowns():
    specs = {s.key: s for s in forms.all_specs({
        "model.name_or_path": {"choices": ["a", "b"], "allow_custom_value": True},
        "data.eval_dataset": {"choices": ["x"]},
    })}
    model = specs["model.name_or_path"]
    assert model.kind == "dropdown" and model.kwargs["choices"] == ["a", "b"]
    assert model.kwargs["allow_custom_value"] and model.kwargs["value"] == model.default
    assert "placeholder" not in specs["data.eval_dataset"].kwargs
    assert specs["data.eval_dataset"].kwargs["choices"] == [("(none)", ""), "x"]  # optional: an empty entry


def test_defaults_collect_to_the_default_config():
    specs = forms.all_specs()
    values = [s.kwargs["value"] for s in specs]
    assert forms.validate(specs, values) == RunConfig()
    data = forms.collect(specs, values)
    assert set(data) == {*TOP_LEVEL, *SECTIONS, "sft"}  # one stage's options only


def test_stage_choice_picks_its_options_section():
    specs = forms.all_specs()
    values = [("dpo" if s.key == "stage" else s.kwargs["value"]) for s in specs]
    cfg = forms.validate(specs, values)
    assert cfg.stage == "dpo" and cfg.stage_options == STAGES["dpo"].options()
    assert "sft" not in forms.collect(specs, values)


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_config_round_trips_through_the_form(stage):
    specs = forms.all_specs()
    data = tiny_config(stage, dpo={"beta": 0.3}) if stage == "dpo" else tiny_config(stage)
    data["data"]["eval_dataset"] = None
    values = forms.to_values(specs, data)
    assert values[[s.key for s in specs].index("data.eval_dataset")] == ""  # None shows as empty
    assert forms.validate(specs, values) == from_dict(data)
    assert to_dict(forms.validate(specs, values)) == to_dict(from_dict(data))


def test_bad_values_name_the_key():
    specs = forms.all_specs()
    keys = [s.key for s in specs]

    def values_with(**changes):
        return [changes.get(s.key.replace(".", "__"), s.kwargs["value"]) for s in specs]

    with pytest.raises(ConfigError, match=r"^training\.learning_rate: 5.0 is above the maximum 1.0"):
        forms.validate(specs, values_with(training__learning_rate=5.0))
    with pytest.raises(ConfigError, match=r"^data\.cutoff_len: a value is required"):
        forms.validate(specs, values_with(data__cutoff_len=None))  # an emptied number box
    with pytest.raises(ConfigError, match=r"^lora\.rank: expected int"):
        forms.validate(specs, values_with(lora__rank=2.5))
    with pytest.raises(ValueError):
        forms.collect(specs, [None] * (len(keys) - 1))


def test_to_values_refuses_an_invalid_config():
    with pytest.raises(ConfigError, match="dpo.beta"):
        forms.to_values(forms.all_specs(), {"stage": "dpo", "dpo": {"beta": -1}})


def ancestors(block):
    while block.parent is not None:
        block = block.parent
        yield block


def test_build_section_makes_components_and_folds_advanced_ones():
    specs = forms.section_specs("training", SECTIONS["training"])
    with gr.Blocks():
        comps = forms.build_section(specs)
    assert len(comps) == len(specs)
    for spec, comp in zip(specs, comps):
        assert type(comp) is forms.COMPONENTS[spec.kind]
        assert comp.label == spec.name and comp.info == spec.kwargs["info"]
        assert comp.value == spec.kwargs["value"]
        assert any(isinstance(b, gr.Accordion) for b in ancestors(comp)) == spec.advanced, spec.key
    lr = comps[[s.name for s in specs].index("learning_rate")]
    assert (lr.minimum, lr.maximum) == (0.0, 1.0)
