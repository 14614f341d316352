"""engine.files: atomic writes keep a file's permissions, and a failed write leaves the old file."""

from __future__ import annotations

import os

import pytest

from engine.files import atomic_write


def test_a_rewritten_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "dataset_info.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    atomic_write(path, '{"a": 1}')
    assert path.stat().st_mode & 0o777 == 0o644 and path.read_text() == '{"a": 1}'


def test_a_new_file_gets_the_umasks_permissions_not_mkstemps_private_ones(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new.json", "{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("old")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        atomic_write(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
