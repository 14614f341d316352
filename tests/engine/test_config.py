import dataclasses

import pytest
import yaml

from engine.config import (
    SECTIONS,
    STAGES,
    ConfigError,
    DPOOptions,
    RunConfig,
    TrainingConfig,
    apply_overrides,
    dump_yaml,
    from_dict,
    load_yaml,
    read_yaml,
    to_dict,
)
from tests.helpers import REPO


def test_defaults_round_trip_through_yaml():
    for stage in STAGES:
        cfg = from_dict({"stage": stage})
        again = from_dict(yaml.safe_load(dump_yaml(cfg)))
        assert again == cfg
        assert set(to_dict(cfg)) == {"stage", "name", "init_from", *SECTIONS, stage}


def test_defaults_come_from_the_dataclasses():
    cfg = from_dict({"stage": "dpo"})
    assert cfg.stage_options == DPOOptions()
    assert cfg.stage_options.beta == 0.1  # the seeds' dpo_beta
    assert cfg.training == TrainingConfig()


def test_every_field_has_help_text():
    for cls in [RunConfig, *SECTIONS.values(), *(st.options for st in STAGES.values())]:
        for f in dataclasses.fields(cls):
            if f.name != "stage_options" and f.name not in SECTIONS:
                assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"


@pytest.mark.parametrize("data, key", [
    ({"stage": "dpo", "dpo": {"betta": 0.1}}, "dpo.betta"),
    ({"training": {"learning_rate": 2.0}}, "training.learning_rate"),
    ({"training": {"learning_rate": "fast"}}, "training.learning_rate"),
    ({"training": {"learning_rate": float("nan")}}, "training.learning_rate"),  # passes every bound check
    ({"training": {"learning_rate": ".inf"}}, "training.learning_rate"),
    ({"training": {"per_device_train_batch_size": 0}}, "training.per_device_train_batch_size"),
    ({"training": {"per_device_train_batch_size": 2.5}}, "training.per_device_train_batch_size"),
    ({"lora": {"rank": -1}}, "lora.rank"),
    ({"model": {"finetuning_type": "qlora8"}}, "model.finetuning_type"),
    ({"stage": "ppo2"}, "stage"),
    ({"optimiser": {}}, "optimiser"),
    ({"stage": "sft", "dpo": {"beta": 0.2}}, "dpo"),
    ({"data": ["sql"]}, "data"),
    ({"training": {"gradient_checkpointing": "maybe"}}, "training.gradient_checkpointing"),
])
def test_bad_values_are_rejected_naming_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        from_dict(data)
    assert str(err.value).startswith(key + ":"), str(err.value)


def test_overrides_parse_yaml_scalars():
    data = apply_overrides({"stage": "dpo"}, ["dpo.beta=0.25", "training.max_steps=3", "init_from=",
                                              "training.gradient_checkpointing=true"])
    cfg = from_dict(data)
    assert cfg.stage_options.beta == 0.25 and cfg.training.max_steps == 3 and cfg.init_from is None
    assert cfg.training.gradient_checkpointing is True
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["dpo.beta"])
    with pytest.raises(ConfigError, match="^dpo.x.y:"):
        apply_overrides({}, ["dpo.x.y=1"])


@pytest.mark.parametrize("path", sorted((REPO / "examples").rglob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path):
    cfg = load_yaml(path)
    assert cfg.stage in STAGES


@pytest.mark.parametrize("content, message", [
    (b"stage: dpo\nname: caf\xe9\n", r"c.yaml, line 2: not UTF-8 text \(byte 0xe9\); save the file with the UTF-8"),
    (b"stage: dpo\ndpo:\n  beta: [0.1\n", r"c.yaml, line 4: not valid YAML"),
], ids=["not-utf8", "bad-yaml"])
def test_a_config_file_that_cannot_be_read_names_the_file_and_line(tmp_path, content, message):
    (tmp_path / "c.yaml").write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_yaml(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=message):
        read_yaml(tmp_path / "c.yaml")


@pytest.mark.parametrize("yaml_text, key", [
    ("training:\n  learning_rate: .nan\n", "training.learning_rate"),
    ("training:\n  learning_rate: .inf\n", "training.learning_rate"),
    ("training:\n  learning_rate: -.inf\n", "training.learning_rate"),
    ("stage: dpo\ndpo:\n  beta: .nan\n", "dpo.beta"),
    ("training:\n  max_grad_norm: .inf\n", "training.max_grad_norm"),
], ids=["nan", "inf", "-inf", "dpo.beta-nan", "max_grad_norm-inf"])
def test_nan_and_inf_from_a_yaml_file_are_refused_naming_the_key(tmp_path, yaml_text, key):
    """YAML reads .nan and .inf as floats, which pass every min/max bound check."""
    (tmp_path / "c.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError, match=rf"^{key}: expected float \(a finite number\), got -?(nan|inf)$"):
        load_yaml(tmp_path / "c.yaml")
    value = yaml_text.split(": ")[-1].strip()  # the same value as a command-line override
    with pytest.raises(ConfigError, match=rf"^{key}: expected float \(a finite number\)"):
        load_yaml(None, [*(["stage=dpo"] if key.startswith("dpo.") else []), f"{key}={value}"])
