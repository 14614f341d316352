"""webui.run_form's "Load settings": a config file that is not UTF-8 text, or not valid YAML, is
named with its line in a warning, and the form is left as it was."""

from __future__ import annotations

import warnings

import pytest

from engine.config import ConfigError, from_dict
from tests.helpers import make_run, tiny_config
from webui import access, run_form

NO_CHANGE = {}  # a load_from_* answer that names no field: the form is left as it was
NOT_UTF8 = b"stage: dpo\nname: caf\xe9\n"  # latin-1, as an editor on Windows may save it


def test_an_uploaded_config_that_is_not_utf8_is_named_and_changes_nothing(tmp_path):
    specs = run_form.form_specs()
    path = tmp_path / "latin1.yaml"
    path.write_bytes(NOT_UTF8)
    with pytest.warns(UserWarning, match=r"latin1.yaml, line 2: not UTF-8 text \(byte 0xe9\); save the file with "
                                         r"the UTF-8 encoding"):
        assert run_form.load_from_file(specs, str(path)) == NO_CHANGE
    path.write_bytes(b"stage: dpo\ndpo: {beta: 0.1\n")
    with pytest.warns(UserWarning, match=r"latin1.yaml, line \d: not valid YAML"):
        assert run_form.load_from_file(specs, str(path)) == NO_CHANGE


def test_a_saved_or_run_config_that_is_not_utf8_is_named_and_changes_nothing(runs_env):
    specs = run_form.form_specs()
    (runs_env / "configs").mkdir()
    (runs_env / "configs" / "latin1.yaml").write_bytes(NOT_UTF8)
    with pytest.warns(UserWarning, match=r"latin1.yaml, line 2: not UTF-8 text"):
        assert run_form.load_from_saved(specs, "latin1.yaml") == NO_CHANGE
    run = make_run("dpo", "completed")
    run.config_file.write_bytes(NOT_UTF8)
    with pytest.warns(UserWarning, match=r"config.yaml, line 2: not UTF-8 text"):
        assert run_form.load_from_run(specs, run.name) == NO_CHANGE
    assert run.config_file.read_bytes() == NOT_UTF8


def test_a_broken_registry_leaves_the_train_tabs_dataset_pickers_empty_and_names_the_file(tmp_path):
    (tmp_path / "dataset_info.json").write_text('{"sql_sft": ')
    with pytest.warns(UserWarning, match=r"dataset_info.json is not valid JSON"):
        assert run_form.dataset_choices("sft", str(tmp_path)) == []
    assert (tmp_path / "dataset_info.json").read_text() == '{"sql_sft": '


def test_paths_outside_the_allowed_folders_are_refused_by_field(runs_env, tmp_path_factory, monkeypatch):
    # Any HTTP client can send the form: Start, Save config and the preview all go through preflight.
    monkeypatch.setenv(access.ENV_DIRS, "")  # allowed: data/ and this test's saves folder
    outside = tmp_path_factory.mktemp("outside")
    (outside / "run").mkdir()
    (outside / "run" / "config.yaml").write_text("stage: sft\n")
    forms = {"data.dataset_dir": tiny_config("sft", data={"dataset_dir": str(outside / "data")}),
             "model.name_or_path": tiny_config("sft", model={"name_or_path": str(outside)}),
             "init_from": {**tiny_config("dpo"), "init_from": str(outside / "run")},
             "ppo.reward_run": tiny_config("ppo", ppo={"reward_run": "../" * 12 + str(outside / "run")})}
    for key, form in forms.items():
        with pytest.raises(ConfigError, match=f"^{key}: .* is outside the folders the web UI may use") as refused:
            run_form.preflight(from_dict(form))
        assert "--allow-dir" in str(refused.value)
    assert sorted(p.name for p in outside.iterdir()) == ["run"]  # no data folder made
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # typed key by key: an empty list, no warning per keystroke
        assert run_form.dataset_choices("sft", str(outside)) == []
    make_run("sft", "completed")
    assert run_form.preflight(from_dict({**tiny_config("dpo"), "init_from": "latest:sft"})).init_from  # names work
