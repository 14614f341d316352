"""engine.data.reading: each way a data file can be broken is reported by file and line, and a
registry that is not UTF-8 is named; nothing reads half a file as rows."""

from __future__ import annotations

import pytest

from engine.data.reading import load_rows
from engine.data.registry import DatasetError, read_registry


def load(tmp_path, name: str, content: bytes):
    (tmp_path / name).write_bytes(content)
    return load_rows({"file_name": name}, tmp_path)


@pytest.mark.parametrize("name, content, message", [
    ("empty.jsonl", b"", "empty.jsonl is empty: it holds no rows"),
    ("blank.json", b"\n  \n", "blank.json is empty: it holds no rows"),
    ("latin1.jsonl", b'{"instruction": "ok", "output": "ok"}\n{"instruction": "caf\xe9", "output": "x"}\n',
     "latin1.jsonl, line 2: not UTF-8 text (byte 0xe9 at column 21); save the file with the UTF-8 encoding"),
    ("latin1.csv", b"instruction,output\ncaf\xe9,x\n", "latin1.csv, line 2: not UTF-8 text (byte 0xe9 at column 4)"),
    ("extra.csv", b"prompt,chosen,rejected\na,b,c\nd,e,f,g\n",
     "extra.csv, line 3: 4 fields where the header has 3; quote fields that contain commas"),
    ("cut.jsonl", b'{"a": 1}\n{"a": \n', "cut.jsonl, line 2: not valid JSON"),
])
def test_a_broken_file_is_named_with_its_line(tmp_path, name, content, message):
    with pytest.raises(DatasetError) as caught:
        load(tmp_path, name, content)
    assert str(caught.value).startswith(message), str(caught.value)


def test_good_files_still_load(tmp_path):
    assert load(tmp_path, "ok.csv", "prompt,chosen,rejected\n\"a, with comma\",b,c\n".encode()).to_list() == [
        {"prompt": "a, with comma", "chosen": "b", "rejected": "c"}]
    assert len(load(tmp_path, "ok.jsonl", '{"text": "café"}\n'.encode())) == 1


def test_a_registry_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "dataset_info.json").write_bytes(b'{"caf\xe9": {"file_name": "x.json"}}')
    with pytest.raises(DatasetError, match=r"dataset_info.json is not UTF-8 text .* save it as UTF-8"):
        read_registry(tmp_path)


def test_a_registry_that_is_not_valid_json_is_named_and_left_as_it_is(tmp_path):
    broken = b'{"mine": {"file_name": "x.json"},\n'
    (tmp_path / "dataset_info.json").write_bytes(broken)
    with pytest.raises(DatasetError, match=r"dataset_info.json is not valid JSON \(.*line 2.*\); fix the file or "
                                           r"restore it"):
        read_registry(tmp_path)
    assert (tmp_path / "dataset_info.json").read_bytes() == broken
