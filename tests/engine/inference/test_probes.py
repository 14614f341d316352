"""engine.inference.probes: the SQL sample's style probes and the probe names a user passes."""

import pytest

from engine.config import ConfigError
from engine.inference.probes import PROBES, has_sql_comment, is_formatted, probe_names


def test_style_probes():
    preferred = "-- Names of users over 30\nSELECT\n    name\nFROM\n    users\nWHERE\n    age > 30;"
    assert has_sql_comment(preferred) and is_formatted(preferred)
    one_line = "SELECT name FROM users WHERE age > 30;"
    assert not has_sql_comment(one_line) and not is_formatted(one_line)
    assert not has_sql_comment("-- Names of users\n--\n--\n--")  # degenerate: no query
    assert not has_sql_comment("SELECT name FROM users; -- done")  # the comment must come first
    assert set(PROBES) == {"comment_fraction", "formatted_fraction"}


def test_probe_names_default_to_all_and_refuse_unknown_ones():
    assert probe_names(None) == list(PROBES)
    assert probe_names(" formatted_fraction, ") == ["formatted_fraction"]
    with pytest.raises(ConfigError, match="--probes: unknown probe 'bogus'"):
        probe_names("comment_fraction,bogus")
