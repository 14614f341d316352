"""engine.runs.folder: a run folder that cannot be written completely is not left behind."""

from __future__ import annotations

import pytest

import engine.runs.folder as folder_module
from engine.config import from_dict
from engine.runs.folder import create_run
from tests.helpers import tiny_config


def test_a_full_disk_while_creating_a_run_leaves_no_folder_and_says_what_to_do(tmp_path, monkeypatch):
    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folder_module, "atomic_write", full_disk)
    with pytest.raises(OSError, match="could not create the run folder .*: No space left on device; free disk space"):
        create_run(from_dict(tiny_config("sft")), root=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, folder_end", [
    ("../../etc/passwd", "-sft-..-..-etc-passwd"),
    ("my run: v2 / final", "-sft-my-run-v2-final"),
    ("..", "-sft-.."),
    ("///", "-sft-run"),
], ids=["climbs", "spaces-and-slash", "dot-dot", "slashes-only"])
def test_a_run_name_becomes_a_safe_folder_name_inside_the_runs_folder(tmp_path, name, folder_end):
    run = create_run(from_dict({**tiny_config("sft"), "name": name}), root=tmp_path)
    assert run.path.parent == tmp_path and run.name.endswith(folder_end) and "/" not in run.name
    assert [p.name for p in tmp_path.iterdir()] == [run.name]
