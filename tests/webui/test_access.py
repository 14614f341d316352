"""webui.access: the allowed roots and the check every browser-given path goes through."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.data.registry import dataset_folder
from webui import access


@pytest.fixture
def roots(tmp_path, monkeypatch) -> dict[str, Path]:
    """A saves folder, one folder allowed by the environment, one by --allow-dir, one outside."""
    found = {name: tmp_path / name for name in ("saves", "env", "flag", "outside")}
    for folder in found.values():
        folder.mkdir()
    monkeypatch.setenv("WORKBENCH_SAVES", str(found["saves"]))
    monkeypatch.setenv(access.ENV_DIRS, os.pathsep.join([str(found["env"]), ""]))
    monkeypatch.setattr(access, "_started_with", [])
    access.allow([found["flag"]])
    return found


def test_the_roots_are_the_data_folder_the_saves_and_the_folders_given(roots):
    assert access.allowed_roots() == [dataset_folder(None).resolve(), roots["saves"], roots["flag"], roots["env"]]
    for name in ("saves", "env", "flag"):
        assert access.confine(roots[name] / "a" / "b.jsonl") == roots[name] / "a" / "b.jsonl"
    assert access.confine(dataset_folder(None) / "dataset_info.json") == dataset_folder(None) / "dataset_info.json"


def test_a_path_outside_is_refused_with_the_roots_and_the_fix(roots):
    with pytest.raises(access.OutsideAllowedFolders) as refused:
        access.confine(roots["outside"] / "secret.json")
    message = str(refused.value)
    assert str(roots["outside"] / "secret.json") in message and str(roots["saves"]) in message
    assert "--allow-dir" in message and access.ENV_DIRS in message
    assert isinstance(refused.value, PermissionError)  # handlers that catch OSError show it as a message


def test_dot_dot_and_symlinks_are_resolved_before_the_check(roots):
    climbing = roots["saves"] / ".." / "outside" / "x.json"
    with pytest.raises(access.OutsideAllowedFolders, match="that is"):  # both spellings are named
        access.confine(climbing)
    (roots["saves"] / "link").symlink_to(roots["outside"])
    with pytest.raises(access.OutsideAllowedFolders):
        access.confine(roots["saves"] / "link" / "x.json")
    assert access.confine(roots["outside"] / ".." / "env") == roots["env"]


def test_a_dataset_dir_is_resolved_like_the_registry_reads_it(roots):
    assert access.confine_dataset_dir(None) == str(dataset_folder(None).resolve())
    assert access.confine_dataset_dir("data") == str(dataset_folder("data").resolve())  # relative to the repository
    assert access.confine_dataset_dir(str(roots["env"])) == str(roots["env"])
    with pytest.raises(access.OutsideAllowedFolders):
        access.confine_dataset_dir("../outside-the-repository")


def test_uploads_are_accepted_from_gradios_upload_folder(roots, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    upload = tmp_path / "gradio" / "0123abcd" / "pairs.jsonl"
    assert access.confine_upload(upload) == upload
    with pytest.raises(access.OutsideAllowedFolders):
        access.confine_upload(roots["outside"] / "pairs.jsonl")


def test_model_names_hub_names_and_model_folders(roots):
    (roots["saves"] / "models" / "tiny").mkdir(parents=True)
    (roots["outside"] / "model").mkdir()
    (roots["saves"] / "models" / "linked").symlink_to(roots["outside"] / "model")  # the owner's link
    assert access.confine_model("tiny") == "tiny"  # a local model, in the saves folder
    assert access.confine_model("linked") == "linked"
    assert access.confine_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert access.confine_model(str(roots["saves"] / "models" / "tiny")) == str(roots["saves"] / "models" / "tiny")
    assert access.confine_model("") == "" and access.confine_model(None) is None
    for folder in (str(roots["outside"] / "model"), str(roots["outside"] / "missing"), "../../somewhere", "~/m"):
        with pytest.raises(access.OutsideAllowedFolders):  # a path is checked whether it exists or not
            access.confine_model(folder)


def test_run_values_that_name_a_path(roots):
    assert not any(access.names_a_path(v) for v in ("20250101-000000-sft-run", "latest:sft", "2025"))
    assert all(access.names_a_path(v) for v in ("/tmp/x", "../x", "runs/x", "~/x", ".", ".."))
