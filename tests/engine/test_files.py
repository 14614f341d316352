"""engine.files: atomic writes keep a file's permissions, and a failed write leaves the old file."""

from __future__ import annotations

import os

import pytest

from engine.files import atomic_write, read_jsonl


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


def test_read_jsonl_skips_a_half_written_line_and_lines_that_are_not_objects(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1, "loss": 0.7}\n[1, 2]\n\xff\xfe\n{"step": 2, "loss": 0.6}\n{"step": 3, "lo')
    assert read_jsonl(path) == [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}]
    with open(path, "a", encoding="utf-8") as f:  # the writer finishes its line
        f.write('ss": 0.5}\n')
    assert read_jsonl(path)[-1] == {"step": 3, "loss": 0.5}
    assert read_jsonl(tmp_path / "missing.jsonl") == []
