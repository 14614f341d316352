"""engine.data.probes: task probes declared without code (the SQL sets' two, a user's own), alignment
accuracy, and declarations that cannot work refused by name, in the registry too."""

from __future__ import annotations

import json

import pytest

from engine.config import ConfigError
from engine.data.probes import ProbeError, choose, declaration, parse_one, parse_probes
from engine.data.registry import DatasetError, read_registry, set_probe
from tests.helpers import DATA, GOOD, LOOP, PARAGRAPH


def sql_probes():
    return parse_probes(read_registry(DATA)["sql_dpo_eval"]["probes"])


def test_the_sql_style_probes_are_declarations_on_the_sql_sets():
    commented, formatted = sql_probes()["comment_fraction"], sql_probes()["formatted_fraction"]
    preferred = "-- Names of users over 30\nSELECT\n    name\nFROM\n    users\nWHERE\n    age > 30;"
    assert commented.passes(preferred) and formatted.passes(preferred)
    one_line = "SELECT name FROM users WHERE age > 30;"
    assert not commented.passes(one_line) and not formatted.passes(one_line)
    assert not commented.passes("-- Names of users\n--\n--\n--")  # degenerate: no query
    assert not commented.passes("SELECT name FROM users; -- done")  # the comment must come first
    registry = read_registry(DATA)
    assert all(registry[n]["probes"] == registry["sql_dpo"]["probes"] for n in registry if n.startswith("sql_"))


def test_alignment_accuracy_counts_passing_answers_that_are_not_degenerate():
    numbered = parse_one("numbered starts_with 1.")
    assert numbered.accuracy([GOOD, PARAGRAPH, LOOP, GOOD]) == 0.5  # the loop starts with "1." but loops
    assert numbered.passes(LOOP) and not numbered.aligned(LOOP)
    long = parse_probes({"long": {"min_lines": 3, "not_contains": "sorry", "max_chars": 400}})["long"]
    assert long.passes(GOOD) and not long.passes(PARAGRAPH) and not long.passes(GOOD + "\nsorry")


def test_bad_declarations_are_refused_naming_the_probe():
    with pytest.raises(ProbeError, match=r"probes.x: unknown condition 'startswith'; use matches"):
        parse_probes({"x": {"startswith": "1."}})
    with pytest.raises(ProbeError, match=r"probes.x: matches '\(' is not a valid regular expression"):
        parse_probes({"x": {"matches": "("}})
    with pytest.raises(ProbeError, match=r"min_lines takes a whole number"):
        parse_probes({"x": {"min_lines": "three"}})
    with pytest.raises(ProbeError, match=r"--probe: 'numbered' should be NAME KIND VALUE"):
        parse_one("numbered")
    assert isinstance(ProbeError("x"), ConfigError)


def test_choose_picks_declared_probes_by_name_and_adds_one():
    declared = sql_probes()
    assert list(choose(declared, None, None)) == ["comment_fraction", "formatted_fraction"]
    assert list(choose(declared, "formatted_fraction", "numbered starts_with 1.")) == ["formatted_fraction", "numbered"]
    with pytest.raises(ProbeError, match="--probes: 'bogus' is not a probe of the held-out dataset"):
        choose(declared, "comment_fraction,bogus", None)
    assert declaration(declared["comment_fraction"]) == read_registry(DATA)["sql_dpo"]["probes"]["comment_fraction"]


def test_a_probe_declared_on_a_registered_dataset(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.json"}}))
    assert set_probe(tmp_path, "mine", "numbered", {"starts_with": "1."}) == {"numbered": {"starts_with": "1."}}
    assert read_registry(tmp_path)["mine"]["probes"] == {"numbered": {"starts_with": "1."}}
    with pytest.raises(DatasetError, match="unknown condition"):
        set_probe(tmp_path, "mine", "bad", {"nope": 1})
    assert list(read_registry(tmp_path)["mine"]["probes"]) == ["numbered"]  # a refused probe changes nothing
    set_probe(tmp_path, "mine", "numbered", None)
    assert "probes" not in json.loads((tmp_path / "dataset_info.json").read_text())["mine"]
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "m.json", "probes": {"x": {}}}}))
    with pytest.raises(DatasetError, match=r"dataset 'mine': probes.x: expected an object of conditions"):
        read_registry(tmp_path)
